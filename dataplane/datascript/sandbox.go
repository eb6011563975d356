package datascript

import (
	"strings"
	"sync/atomic"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/pm"
)

// Limits of a Lua state.
const (
	// callStackSize bounds nested calls: deeper recursion is a Lua error
	// ("stack overflow"), never a Go stack overflow.
	callStackSize = 200
	// registrySize and registryMaxSize bound the value stack (16 bytes a
	// slot): unpack of a huge table is a Lua error ("registry overflow").
	registrySize    = 4 << 10
	registryMaxSize = 256 << 10
)

// state is one Lua state with the avi library bound to it. The library's
// Go functions are made once per state and find the transaction through
// the state, so a run makes no closures.
type state struct {
	L *lua.LState
	e *Engine

	// Set for the length of a run.
	c     *engineConfig
	ev    event
	evBit evMask
	t     *Txn
	set   *Set

	// base holds the globals every chunk sees (read through runEnv's
	// metatable); runEnv is the chunk's own globals, replaced when a
	// chunk leaves anything in it.
	base, runEnv, envMeta *lua.LTable
	// http is the real avi.http table, whose uri field is set per run.
	http *lua.LTable
	// protected are the tables scripts may read but not change: the
	// read-only library proxies and reqvar.
	protected  map[*lua.LTable]bool
	roNewIndex *lua.LFunction

	fns    map[*lua.FunctionProto]*lua.LFunction
	fnsCfg *engineConfig

	// terminal is the error raised by a terminal action; it carries a
	// stack trace already, so that raising it costs no formatting.
	terminal *lua.ApiError
	uriKey   string
	uriVal   lua.LValue

	deadline atomic.Int64
	done     chan struct{}
}

func newState(e *Engine) *state {
	L := lua.NewState(lua.Options{
		SkipOpenLibs:     true,
		CallStackSize:    callStackSize,
		RegistrySize:     registrySize,
		RegistryMaxSize:  registryMaxSize,
		RegistryGrowStep: registrySize,
	})
	st := &state{
		L:         L,
		e:         e,
		protected: map[*lua.LTable]bool{},
		fns:       map[*lua.FunctionProto]*lua.LFunction{},
		done:      make(chan struct{}),
		terminal: &lua.ApiError{
			Type:       lua.ApiErrorRun,
			Object:     lua.LString("terminal action"),
			StackTrace: "terminal action",
		},
	}
	st.roNewIndex = L.NewFunction(func(L *lua.LState) int {
		L.RaiseError("attempt to modify a read-only table")
		return 0
	})
	st.openLibs()
	st.envMeta = L.NewTable()
	st.envMeta.RawSetString("__index", st.base)
	st.envMeta.RawSetString("__metatable", lua.LFalse)
	st.runEnv = st.newEnv()
	L.SetContext(st)
	return st
}

// openLibs opens base, table, string, math and a safe os, keeps of them
// what a DataScript may use, and builds the globals table base.
func (st *state) openLibs() {
	L := st.L
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
		{lua.OsLibName, lua.OpenOs},
	} {
		L.Push(L.NewFunction(lib.open))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	g := L.G.Global
	st.base = L.NewTable()
	for _, name := range []string{
		"assert", "error", "getmetatable", "ipairs", "next", "pairs", "rawequal", "rawget",
		"select", "setmetatable", "tonumber", "tostring", "type", "unpack", "_VERSION",
	} {
		st.base.RawSetString(name, g.RawGetString(name))
	}
	st.base.RawSetString("pcall", L.NewFunction(st.pcall))
	st.base.RawSetString("xpcall", L.NewFunction(st.xpcall))
	st.base.RawSetString("rawset", L.NewFunction(st.rawset))

	str := g.RawGetString("string").(*lua.LTable)
	str.RawSetString("dump", lua.LNil)
	str.RawSetString("gfind", lua.LNil)
	orig := func(t *lua.LTable, name string) lua.LGFunction {
		return t.RawGetString(name).(*lua.LFunction).GFunction
	}
	strRep, strFormat := orig(str, "rep"), orig(str, "format")
	strFind, strMatch := orig(str, "find"), orig(str, "match")
	str.RawSetString("find", L.NewFunction(func(L *lua.LState) int { return st.strSearch(L, strFind, true) }))
	str.RawSetString("match", L.NewFunction(func(L *lua.LState) int { return st.strSearch(L, strMatch, false) }))
	str.RawSetString("rep", L.NewFunction(func(L *lua.LState) int { return st.strRep(L, strRep) }))
	str.RawSetString("format", L.NewFunction(func(L *lua.LState) int { return st.strFormat(L, strFormat) }))
	str.RawSetString("gsub", L.NewFunction(st.strGsub))
	str.RawSetString("beginswith", L.NewFunction(strBeginsWith))
	str.RawSetString("endswith", L.NewFunction(strEndsWith))
	str.RawSetString("contains", L.NewFunction(strContains))
	strMeta := L.NewTable()
	strMeta.RawSetString("__index", str)
	strMeta.RawSetString("__metatable", lua.LFalse)
	L.SetMetatable(lua.LString(""), strMeta)

	tbl := g.RawGetString("table").(*lua.LTable)
	for _, name := range []string{"insert", "remove", "sort"} {
		f := orig(tbl, name)
		tbl.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
			if t, ok := L.Get(1).(*lua.LTable); ok && st.protected[t] {
				L.RaiseError("attempt to modify a read-only table")
			}
			return f(L)
		}))
	}
	concat := orig(tbl, "concat")
	tbl.RawSetString("concat", L.NewFunction(func(L *lua.LState) int { return st.tableConcat(L, concat) }))

	math := g.RawGetString("math").(*lua.LTable)
	math.RawSetString("randomseed", lua.LNil)

	osLib := g.RawGetString("os").(*lua.LTable)
	safeOS := L.NewTable()
	for _, name := range []string{"time", "clock", "date"} {
		safeOS.RawSetString(name, osLib.RawGetString(name))
	}

	st.base.RawSetString("string", st.readOnly(str))
	st.base.RawSetString("table", st.readOnly(tbl))
	st.base.RawSetString("math", st.readOnly(math))
	st.base.RawSetString("os", st.readOnly(safeOS))
	st.base.RawSetString("avi", st.readOnly(st.aviLib()))
	st.base.RawSetString("vigil", st.readOnly(st.vigilLib()))

	// Nothing reaches the state's own globals (chunks run with their own
	// environment), but what must not run is taken out of them as well.
	for _, name := range []string{
		"collectgarbage", "dofile", "getfenv", "load", "loadfile", "loadstring", "module",
		"newproxy", "print", "require", "setfenv", "_printregs", "os", "io", "package",
		"debug", "coroutine", "channel", "_GOPHER_LUA_VERSION",
	} {
		g.RawSetString(name, lua.LNil)
	}
}

// readOnly returns an empty table that reads through to t and refuses
// writes. It is marked protected so that rawset and table.insert cannot
// write into it either.
func (st *state) readOnly(t *lua.LTable) *lua.LTable {
	p := st.L.NewTable()
	mt := st.L.NewTable()
	mt.RawSetString("__index", t)
	mt.RawSetString("__newindex", st.roNewIndex)
	mt.RawSetString("__metatable", lua.LFalse)
	p.Metatable = mt
	st.protected[p] = true
	return p
}

func (st *state) newEnv() *lua.LTable {
	env := st.L.NewTable()
	env.Metatable = st.envMeta
	env.RawSetString("_G", env)
	return env
}

// cleanEnv replaces the chunk environment when the last chunk left
// globals in it, so that globals never outlive one chunk's run.
func (st *state) cleanEnv() {
	env := st.runEnv
	if k, v := env.Next(lua.LNil); k == lua.LString("_G") && v == env && env.Metatable == st.envMeta {
		if k, _ = env.Next(k); k == lua.LNil {
			return
		}
	}
	st.runEnv = st.newEnv()
}

// function returns the state's function for proto, made once per
// configuration.
func (st *state) function(proto *lua.FunctionProto) *lua.LFunction {
	if st.fnsCfg != st.c {
		clear(st.fns)
		st.fnsCfg = st.c
	}
	fn := st.fns[proto]
	if fn == nil {
		fn = st.L.NewFunctionFromProto(proto)
		st.fns[proto] = fn
	}
	return fn
}

// begin and end bracket a run.
func (st *state) begin(c *engineConfig, ev event, t *Txn) {
	st.c, st.ev, st.evBit, st.t = c, ev, evMask(1<<ev), t
	st.setURI()
}

func (st *state) end() {
	st.t, st.set = nil, nil
	st.L.SetTop(0)
}

// setURI sets the field avi.http.uri to the request's path, reusing the
// last value when the path is the same.
func (st *state) setURI() {
	if st.t.Req == nil {
		st.http.RawSetString("uri", lua.LNil)
		return
	}
	p, _ := splitTarget(st.t.Req.Target)
	if string(p) != st.uriKey || st.uriVal == nil {
		st.uriKey = string(p)
		st.uriVal = lua.LString(st.uriKey)
	}
	st.http.RawSetString("uri", st.uriVal)
}

// stop ends the chunk after a terminal action; Run recognises the error
// and reports no failure.
func (st *state) stop() int {
	panic(st.terminal)
}

// uncatchable reports whether err is a terminal action or the budget, which a
// script's pcall must not catch.
func (st *state) uncatchable(err error) bool {
	return err == st.terminal || st.deadline.Load() < 0 //nolint:errorlint // identity of the sentinel
}

func (st *state) pcall(L *lua.LState) int {
	L.CheckAny(1)
	nargs := L.GetTop() - 1
	if err := L.PCall(nargs, lua.MultRet, nil); err != nil {
		if st.uncatchable(err) {
			panic(err)
		}
		L.Push(lua.LFalse)
		if aerr, ok := err.(*lua.ApiError); ok { //nolint:errorlint // gopher-lua returns it unwrapped
			L.Push(aerr.Object)
		} else {
			L.Push(lua.LString(err.Error()))
		}
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

func (st *state) xpcall(L *lua.LState) int {
	fn := L.CheckAny(1)
	handler := L.CheckFunction(2)
	L.SetTop(0)
	L.Push(fn)
	if err := L.PCall(0, lua.MultRet, nil); err != nil {
		if st.uncatchable(err) {
			panic(err)
		}
		var obj lua.LValue = lua.LString(err.Error())
		if aerr, ok := err.(*lua.ApiError); ok { //nolint:errorlint // gopher-lua returns it unwrapped
			obj = aerr.Object
		}
		L.SetTop(0)
		L.Push(handler)
		L.Push(obj)
		if err := L.PCall(1, 1, nil); err != nil {
			if st.uncatchable(err) {
				panic(err)
			}
			L.SetTop(0)
			L.Push(lua.LFalse)
			L.Push(lua.LString("error in error handling"))
			return 2
		}
		L.Insert(lua.LFalse, 1)
		return 2
	}
	L.Insert(lua.LTrue, 1)
	return L.GetTop()
}

func (st *state) rawset(L *lua.LState) int {
	t := L.CheckTable(1)
	if st.protected[t] {
		L.RaiseError("attempt to modify a read-only table")
	}
	k := L.CheckAny(2)
	if k == lua.LNil {
		L.ArgError(2, "table index is nil")
	}
	t.RawSet(k, L.CheckAny(3))
	L.SetTop(1)
	return 1
}

// tooLong raises the error of a string over the engine's limit.
func (st *state) tooLong(fn string, n int) {
	st.L.RaiseError("%s: result of %d bytes is over the limit of %d", fn, n, st.c.env.MaxString)
}

func (st *state) strRep(L *lua.LState, orig lua.LGFunction) int {
	s := L.CheckString(1)
	n := L.CheckInt(2)
	if n > 0 && len(s) > 0 && n > st.c.env.MaxString/len(s) {
		st.tooLong("string.rep", len(s)*min(n, 1<<30))
	}
	return orig(L)
}

// strFormat bounds the result before formatting: widths and precisions
// have at most two digits (as in Lua 5.1), so the result is at most the
// format, the arguments and 99 bytes per directive.
func (st *state) strFormat(L *lua.LState, orig lua.LGFunction) int {
	f := L.CheckString(1)
	size := len(f)
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		for i < len(f) && strings.IndexByte("-+ #0", f[i]) >= 0 {
			i++
		}
		digits := 0
		for i < len(f) && (f[i] >= '0' && f[i] <= '9' || f[i] == '.') {
			if f[i] != '.' {
				digits++
			} else {
				digits = 0
			}
			if digits > 2 {
				L.RaiseError("invalid format (width or precision too long)")
			}
			i++
		}
		size += 99
	}
	for i := 2; i <= L.GetTop(); i++ {
		if s, ok := L.Get(i).(lua.LString); ok {
			size += len(s)
		} else {
			size += 32
		}
	}
	if size > st.c.env.MaxString {
		st.tooLong("string.format", size)
	}
	return orig(L)
}

func (st *state) tableConcat(L *lua.LState, orig lua.LGFunction) int {
	t := L.CheckTable(1)
	sep := len(L.OptString(2, ""))
	size := 0
	n := t.Len()
	for i := 1; i <= n; i++ {
		switch v := t.RawGetInt(i).(type) {
		case lua.LString:
			size += len(v) + sep
		default:
			size += 32 + sep
		}
		if size > st.c.env.MaxString {
			st.tooLong("table.concat", size)
		}
	}
	return orig(L)
}

// strGsub is Lua's string.gsub, built in one pass with the result's size
// checked as it grows (gopher-lua's own copies the string per match).
// searchMin is the subject length from which strSearch looks for a
// pattern's literal head first; below it the matcher alone is as quick.
const searchMin = 64

// strSearch is string.find (find) or string.match, quicker on a long
// subject when the pattern starts with literal text. gopher-lua's matcher
// tries every position of the subject and allocates at each, ~0.5µs a
// byte: 10ms of the budget for a 20 KB request body. A match can only
// start where the pattern's literal head occurs, so those places are found
// with strings.Index and the pattern is tried there, anchored. Results,
// quirks and errors are those of gopher-lua's functions, which do the
// matching, but for a plain find from past the end, which finds nothing
// as in Lua rather than failing.
func (st *state) strSearch(L *lua.LState, orig lua.LGFunction, find bool) int {
	s, pat := L.CheckString(1), L.CheckString(2)
	// The 0-based start, as both of gopher-lua's functions compute it.
	from := L.OptInt(3, 1)
	if from < 0 {
		from = len(s) + from + 1
	}
	from = max(from-1, 0)
	if find && L.GetTop() >= 4 && lua.LVAsBool(L.Get(4)) {
		if from > len(s) && pat != "" {
			L.Push(lua.LNil) // gopher-lua's plain find fails here
			return 1
		}
		return orig(L)
	}
	if len(s)-from < searchMin {
		return orig(L)
	}
	head := literalHead(pat)
	if head == "" {
		return orig(L)
	}
	if _, err := pm.Find(pat, nil, 0, 1); err != nil {
		return orig(L) // raises the pattern's error
	}
	anchored := lua.LString("^" + pat)
	subject := lua.LString(s)
	for {
		i := strings.Index(s[from:], head)
		if i < 0 {
			break
		}
		at := from + i
		L.SetTop(0)
		L.Push(subject)
		L.Push(anchored)
		L.Push(lua.LNumber(at + 1))
		if n := orig(L); n > 0 && L.Get(-n) != lua.LNil {
			return n
		}
		if st.deadline.Load() < 0 {
			L.RaiseError("%s", errBudget)
		}
		from = at + 1
	}
	// No match: find returns nil, gopher-lua's match nothing.
	L.SetTop(0)
	L.Push(lua.LNil)
	if find {
		return 1
	}
	return 0
}

// literalHead returns the text every match of the Lua pattern pat starts
// with: its plain characters and escaped punctuation up to the first
// anchor, class, set, capture or quantified item.
func literalHead(pat string) string {
	var head []byte
	for i := 0; i < len(pat); {
		c, w := pat[i], 1
		switch {
		case c == '%':
			if i+1 == len(pat) || isAlnum(pat[i+1]) {
				return string(head)
			}
			c, w = pat[i+1], 2
		case strings.IndexByte("^$*+?.([-)]", c) >= 0:
			return string(head)
		}
		if j := i + w; j < len(pat) && strings.IndexByte("*+-?", pat[j]) >= 0 {
			return string(head)
		}
		head = append(head, c)
		i += w
	}
	return string(head)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func (st *state) strGsub(L *lua.LState) int {
	s := L.CheckString(1)
	pat := L.CheckString(2)
	L.CheckTypes(3, lua.LTString, lua.LTNumber, lua.LTTable, lua.LTFunction)
	repl := L.Get(3)
	limit := L.OptInt(4, -1)
	// A literal replacement adds its length per match: more matches than
	// fit in the limit cannot succeed, so they are not searched for.
	if r, ok := repl.(lua.LString); ok && len(r) > 0 && !strings.Contains(string(r), "%") {
		if most := st.c.env.MaxString/len(r) + 1; limit < 0 || limit > most {
			limit = most
		}
	}
	mds, err := pm.Find(pat, unsafe.Slice(unsafe.StringData(s), len(s)), 0, limit)
	if err != nil {
		L.RaiseError("%s", err.Error())
	}
	maxLen := st.c.env.MaxString
	var b strings.Builder
	last := 0
	add := func(piece string) {
		if b.Len()+len(piece) > maxLen {
			st.tooLong("string.gsub", b.Len()+len(piece))
		}
		b.WriteString(piece)
	}
	capture := func(m *pm.MatchData, i int) lua.LValue {
		if m.CaptureLength() <= 2 && i == 1 {
			i = 0
		}
		if 2*i+1 >= m.CaptureLength() {
			L.RaiseError("invalid capture index")
		}
		if m.IsPosCapture(2 * i) {
			return lua.LNumber(m.Capture(2*i) + 1)
		}
		return lua.LString(s[m.Capture(2*i):m.Capture(2*i+1)])
	}
	for _, m := range mds {
		start, end := m.Capture(0), m.Capture(1)
		add(s[last:start])
		whole := s[start:end]
		switch r := repl.(type) {
		case lua.LString, lua.LNumber:
			rs := lua.LVAsString(r)
			for i := 0; i < len(rs); i++ {
				c := rs[i]
				if c != '%' || i+1 == len(rs) {
					add(rs[i : i+1])
					continue
				}
				i++
				if d := rs[i]; d >= '0' && d <= '9' {
					add(lua.LVAsString(capture(m, int(d-'0'))))
				} else {
					add(rs[i : i+1])
				}
			}
		case *lua.LTable:
			v := L.GetTable(r, capture(m, 1))
			st.gsubValue(L, v, whole, add)
		case *lua.LFunction:
			L.Push(r)
			n := max(1, m.CaptureLength()/2-1)
			for i := 1; i <= n; i++ {
				L.Push(capture(m, i))
			}
			L.Call(n, 1)
			v := L.Get(-1)
			L.Pop(1)
			st.gsubValue(L, v, whole, add)
		}
		last = end
	}
	add(s[last:])
	L.Push(lua.LString(b.String()))
	L.Push(lua.LNumber(len(mds)))
	return 2
}

func (st *state) gsubValue(L *lua.LState, v lua.LValue, whole string, add func(string)) {
	switch x := v.(type) {
	case *lua.LNilType:
		add(whole)
	case lua.LBool:
		if x {
			L.RaiseError("invalid replacement value (a boolean)")
		}
		add(whole)
	case lua.LString, lua.LNumber:
		add(lua.LVAsString(x))
	default:
		L.RaiseError("invalid replacement value (a %s)", v.Type().String())
	}
}

func strBeginsWith(L *lua.LState) int {
	L.Push(lua.LBool(strings.HasPrefix(L.CheckString(1), L.CheckString(2))))
	return 1
}

func strEndsWith(L *lua.LState) int {
	L.Push(lua.LBool(strings.HasSuffix(L.CheckString(1), L.CheckString(2))))
	return 1
}

func strContains(L *lua.LState) int {
	L.Push(lua.LBool(strings.Contains(L.CheckString(1), L.CheckString(2))))
	return 1
}
