package datascript

import (
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// Bounds and defaults of avi.vs.table_*.
const (
	// DefaultTableLifetime is an entry's lifetime, and a lookup's or
	// refresh's extension, when the script gives none (Avi: 300 s).
	DefaultTableLifetime = 300 * time.Second
	// MaxTableEntries bounds one table; inserts beyond it fail (false).
	MaxTableEntries = 100_000
	// MaxTables bounds the named tables of a virtual service.
	MaxTables = 1024
	// maxTableValue bounds a stored string.
	maxTableValue = 64 << 10
)

// tables are a virtual service's key/value tables: the default one ("")
// and named ones. Values are strings, numbers or booleans (never Lua
// tables, which states must not share). Expired entries are dropped when
// met, and a few at random on each insert, so a table never holds more
// than MaxTableEntries.
type tables struct {
	mu sync.Mutex
	m  map[string]*kvTable
}

type kvTable struct {
	entries map[string]*tableEntry
	purged  time.Time
}

type tableEntry struct {
	value   any // string, float64 or bool
	expires time.Time
}

func newTables() *tables { return &tables{m: map[string]*kvTable{}} }

func (ts *tables) table(name string, create bool) *kvTable {
	t := ts.m[name]
	if t == nil && create && len(ts.m) < MaxTables {
		t = &kvTable{entries: map[string]*tableEntry{}}
		ts.m[name] = t
	}
	return t
}

// insert stores value under key for lifetime unless key is live: then
// only its lifetime is set again (Avi never overwrites a live value).
func (ts *tables) insert(name, key string, value any, lifetime time.Duration, now time.Time) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t := ts.table(name, true)
	if t == nil {
		return false
	}
	if e, ok := t.entries[key]; ok && now.Before(e.expires) {
		e.expires = now.Add(lifetime)
		return true
	}
	t.purge(now)
	if len(t.entries) >= MaxTableEntries {
		return false
	}
	t.entries[key] = &tableEntry{value: value, expires: now.Add(lifetime)}
	return true
}

// purge drops a few expired entries, or all of them once a second when
// the table is full.
func (t *kvTable) purge(now time.Time) {
	n := 0
	for k, e := range t.entries {
		if !now.Before(e.expires) {
			delete(t.entries, k)
		}
		if n++; n >= 8 {
			break
		}
	}
	if len(t.entries) >= MaxTableEntries && now.Sub(t.purged) >= time.Second {
		t.purged = now
		for k, e := range t.entries {
			if !now.Before(e.expires) {
				delete(t.entries, k)
			}
		}
	}
}

// lookup returns key's value and remaining lifetime after extending it by
// ext.
func (ts *tables) lookup(name, key string, ext time.Duration, now time.Time) (any, time.Duration, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e := ts.live(name, key, now)
	if e == nil {
		return nil, 0, false
	}
	e.expires = e.expires.Add(ext)
	return e.value, e.expires.Sub(now), true
}

func (ts *tables) refresh(name, key string, ext time.Duration, now time.Time) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e := ts.live(name, key, now)
	if e == nil {
		return false
	}
	e.expires = e.expires.Add(ext)
	return true
}

func (ts *tables) remove(name, key string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.table(name, false); t != nil {
		delete(t.entries, key)
	}
}

// live returns key's entry, dropping it when expired.
func (ts *tables) live(name, key string, now time.Time) *tableEntry {
	t := ts.table(name, false)
	if t == nil {
		return nil
	}
	e := t.entries[key]
	if e != nil && !now.Before(e.expires) {
		delete(t.entries, key)
		return nil
	}
	return e
}

// tableName reads the optional table of ([tbl,] key, ...): a call without
// a table has at most keyedMax arguments.
// With more, or with keyedMax when the argument after the
// key is not what the keyed form expects there, the first is the table.
func tableName(L *lua.LState, keyedMax int, numberAfterKey bool) (name string, first int) {
	top := L.GetTop()
	switch {
	case top > keyedMax:
		return L.CheckString(1), 2
	case top == keyedMax && !numberAfterKey:
		return L.CheckString(1), 2
	}
	return "", 1
}

func tableKey(L *lua.LState, n int) string {
	k, ok := optString(L, n)
	if !ok {
		L.ArgError(n, "key must be a string or number")
	}
	return k
}

func seconds(L *lua.LState, n int, def time.Duration) time.Duration {
	switch v := L.Get(n).(type) {
	case *lua.LNilType:
		return def
	case lua.LNumber:
		if v < 0 {
			L.ArgError(n, "must not be negative")
		}
		return time.Duration(float64(v) * float64(time.Second))
	}
	L.ArgError(n, "must be a number of seconds")
	return 0
}

// vsTableInsert is table_insert([tbl,] key, value [, lifetime]): with
// three arguments, a number third is the lifetime of (key, value), else
// the three are (tbl, key, value).
func vsTableInsert(st *state, L *lua.LState) int {
	_, third := L.Get(3).(lua.LNumber)
	name, i := tableName(L, 3, third)
	key := tableKey(L, i)
	var value any
	switch v := L.Get(i + 1).(type) {
	case lua.LString:
		if len(v) > maxTableValue {
			L.ArgError(i+1, "value is too long")
		}
		value = string(v)
	case lua.LNumber:
		value = float64(v)
	case lua.LBool:
		value = bool(v)
	default:
		L.ArgError(i+1, "value must be a string, number or boolean")
	}
	life := seconds(L, i+2, DefaultTableLifetime)
	L.Push(lua.LBool(st.e.tables.insert(name, key, value, life, st.c.env.Clock())))
	return 1
}

// vsTableLookup is table_lookup([tbl,] key [, extension]) → value,
// remaining lifetime (whole seconds), or nil.
func vsTableLookup(st *state, L *lua.LState) int {
	_, second := L.Get(2).(lua.LNumber)
	name, i := tableName(L, 2, second)
	key := tableKey(L, i)
	ext := seconds(L, i+1, DefaultTableLifetime)
	v, left, ok := st.e.tables.lookup(name, key, ext, st.c.env.Clock())
	if !ok {
		L.Push(lua.LNil)
		return 1
	}
	switch x := v.(type) {
	case string:
		L.Push(lua.LString(x))
	case float64:
		L.Push(lua.LNumber(x))
	case bool:
		L.Push(lua.LBool(x))
	}
	L.Push(lua.LNumber(int64(left / time.Second)))
	return 2
}

func vsTableRefresh(st *state, L *lua.LState) int {
	_, second := L.Get(2).(lua.LNumber)
	name, i := tableName(L, 2, second)
	key := tableKey(L, i)
	ext := seconds(L, i+1, DefaultTableLifetime)
	L.Push(lua.LBool(st.e.tables.refresh(name, key, ext, st.c.env.Clock())))
	return 1
}

func vsTableRemove(st *state, L *lua.LState) int {
	name, i := tableName(L, 2, false)
	st.e.tables.remove(name, tableKey(L, i))
	return 0
}
