package datascript

import (
	"encoding/json"
	"regexp"

	lua "github.com/yuin/gopher-lua"
)

// Bounds of vigil.event.
const (
	maxEventDetails = 16 << 10
	maxEventDepth   = 8
)

var eventIDPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

func (st *state) vigilLib() *lua.LTable {
	t := st.L.NewTable()
	st.bind(t, "vigil.", "event", mAll, vigilEvent)
	return t
}

// vigilEvent is vigil.event(EVENT_ID, details): it publishes an event
// through Env.Publish and returns true, or false and why when the ID or
// details are refused, the virtual service's event rate is exceeded or
// publishing failed.
func vigilEvent(st *state, L *lua.LState) int {
	id := L.CheckString(1)
	if !eventIDPattern.MatchString(id) || len(id) > 128 {
		L.ArgError(1, "event id must match ^[A-Z][A-Z0-9_]*$")
	}
	details := map[string]any{}
	if t, ok := L.Get(2).(*lua.LTable); ok {
		m, ok := toJSON(t, 0).(map[string]any)
		if !ok {
			L.ArgError(2, "details must be a table with string keys")
		}
		details = m
	} else if L.Get(2) != lua.LNil {
		L.ArgError(2, "details must be a table")
	}
	if b, err := json.Marshal(details); err != nil || len(b) > maxEventDetails {
		L.Push(lua.LFalse)
		L.Push(lua.LString("details are over 16 KiB or not JSON"))
		return 2
	}
	st.e.eventsMu.Lock()
	ok := st.e.events.take(1, st.c.env.Clock())
	st.e.eventsMu.Unlock()
	if !ok {
		L.Push(lua.LFalse)
		L.Push(lua.LString("event rate exceeded"))
		return 2
	}
	if st.c.env.Publish == nil {
		L.Push(lua.LFalse)
		L.Push(lua.LString("events are not published here"))
		return 2
	}
	if err := st.c.env.Publish(id, details); err != nil {
		L.Push(lua.LFalse)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LTrue)
	return 1
}

// toJSON converts a Lua value to what encoding/json takes: a sequence
// becomes a list, a table with string keys an object; functions and
// values nested too deep become nil.
func toJSON(v lua.LValue, depth int) any {
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return float64(x)
	case lua.LBool:
		return bool(x)
	case *lua.LTable:
		if depth >= maxEventDepth {
			return nil
		}
		if n := x.Len(); n > 0 {
			list := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				list = append(list, toJSON(x.RawGetInt(i), depth+1))
			}
			return list
		}
		m := map[string]any{}
		x.ForEach(func(k, val lua.LValue) {
			if ks, ok := k.(lua.LString); ok {
				m[string(ks)] = toJSON(val, depth+1)
			}
		})
		return m
	}
	return nil
}
