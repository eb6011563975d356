package datascript

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Bounds of avi.vs.log per transaction.
const (
	maxLogLines   = 100
	maxLogLineLen = 8 << 10
)

func (st *state) vsLib() *lua.LTable {
	vs := st.L.NewTable()
	const p = "avi.vs."
	st.bind(vs, p, "name", mAll, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(st.c.env.VS))
		return 1
	})
	st.bind(vs, p, "client_ip", mAll, func(st *state, L *lua.LState) int { return pushStringOrNil(L, st.t.ClientIP) })
	st.bind(vs, p, "client_port", mAll, func(st *state, L *lua.LState) int { return pushStringOrNil(L, st.t.ClientPort) })
	st.bind(vs, p, "ip", mAll, func(st *state, L *lua.LState) int { return pushStringOrNil(L, st.t.VSIP) })
	st.bind(vs, p, "port", mAll, func(st *state, L *lua.LState) int { return pushStringOrNil(L, st.t.VSPort) })
	st.bind(vs, p, "log", mAll, vsLog)
	st.bind(vs, p, "get_open_conns", mAll, func(st *state, L *lua.LState) int {
		n := 0
		if st.c.env.OpenConns != nil {
			n = st.c.env.OpenConns()
		}
		L.Push(lua.LNumber(n))
		return 1
	})
	st.bind(vs, p, "table_insert", mAll, vsTableInsert)
	st.bind(vs, p, "table_lookup", mAll, vsTableLookup)
	st.bind(vs, p, "table_refresh", mAll, vsTableRefresh)
	st.bind(vs, p, "table_remove", mAll, vsTableRemove)
	st.bind(vs, p, "rate_limit", mReqPhase, vsRateLimit)
	rl := st.L.NewTable()
	st.bind(rl, p+"ratelimit.", "exceed", mReqPhase, vsRateLimitExceed)
	vs.RawSetString("ratelimit", st.readOnly(rl))
	vs.RawSetString("reqvar", st.reqvarProxy())
	return vs
}

// vsLog appends its arguments (strings, numbers, booleans, nil), joined
// with no separator, to the transaction's log, prefixed with the chunk and
// line as Avi does.
func vsLog(st *state, L *lua.LState) int {
	if len(st.t.Log) >= maxLogLines {
		return 0
	}
	var b strings.Builder
	b.WriteString(L.Where(1))
	b.WriteByte(' ')
	for i := 1; i <= L.GetTop(); i++ {
		b.WriteString(L.ToStringMeta(L.Get(i)).String())
		if b.Len() > maxLogLineLen {
			break
		}
	}
	line := b.String()
	if len(line) > maxLogLineLen {
		line = line[:maxLogLineLen]
	}
	st.t.Log = append(st.t.Log, line)
	return 0
}

// reqvarProxy is avi.vs.reqvar: a table whose fields are the current
// transaction's reqvars.
func (st *state) reqvarProxy() *lua.LTable {
	L := st.L
	p := L.NewTable()
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		if st.t == nil {
			return 0
		}
		L.Push(st.getReqvar(L, 2))
		return 1
	}))
	mt.RawSetString("__newindex", L.NewFunction(func(L *lua.LState) int {
		if st.t == nil {
			return 0
		}
		st.setReqvar(L, 2, 3)
		return 0
	}))
	mt.RawSetString("__metatable", lua.LFalse)
	p.Metatable = mt
	st.protected[p] = true
	return p
}

func reqvarKey(L *lua.LState, n int) string {
	k, ok := optString(L, n)
	if !ok {
		L.ArgError(n, "reqvar name must be a string")
	}
	return k
}

func (st *state) getReqvar(L *lua.LState, n int) lua.LValue {
	if v, ok := st.t.reqvars[reqvarKey(L, n)]; ok {
		return v
	}
	return lua.LNil
}

func (st *state) setReqvar(L *lua.LState, kn, vn int) {
	k := reqvarKey(L, kn)
	v := L.Get(vn)
	if v == lua.LNil {
		delete(st.t.reqvars, k)
		return
	}
	if st.t.reqvars == nil {
		st.t.reqvars = map[string]lua.LValue{}
	}
	st.t.reqvars[k] = v
}
