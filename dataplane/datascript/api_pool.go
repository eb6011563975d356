package datascript

import (
	"strconv"

	lua "github.com/yuin/gopher-lua"
)

func (st *state) poolLib() *lua.LTable {
	t := st.L.NewTable()
	const p = "avi.pool."
	st.bind(t, p, "select", mReq|mReqData, poolSelect)
	st.bind(t, p, "get_servers", mHTTP, func(st *state, L *lua.LState) int {
		pool := st.pool(L, 1)
		up, total := st.c.env.Pools.Servers(pool)
		L.Push(lua.LNumber(up))
		L.Push(lua.LNumber(total))
		return 2
	})
	st.bind(t, p, "get_server_status", mHTTP, func(st *state, L *lua.LState) int {
		pool := st.pool(L, 1)
		server, port := serverArgs(L, 2)
		up, known := st.c.env.Pools.ServerStatus(pool, server, port)
		if !known {
			L.RaiseError("avi.pool.get_server_status: pool %q has no server %s port %d", pool, server, port)
		}
		if up {
			L.Push(lua.LNumber(1))
		} else {
			L.Push(lua.LNumber(0))
		}
		return 1
	})
	st.bind(t, p, "server_ip", mRespPhase|mRespFailed|mLBDone, func(st *state, L *lua.LState) int {
		return pushStringOrNil(L, st.t.ServerIP)
	})
	st.bind(t, p, "chash", mReq|mReqData, func(st *state, L *lua.LState) int {
		st.t.CHash = L.CheckString(1)
		return 0
	})
	return t
}

// pool returns argument n, a pool the set lists and the proxy knows; any
// other name is a runtime error (a literal one was refused at compile
// time).
func (st *state) pool(L *lua.LState, n int) string {
	pool := L.CheckString(n)
	if !st.set.pools[pool] {
		L.RaiseError("pool %q is not in the pool_refs of datascript set %q", pool, st.set.name)
	}
	if st.c.env.Pools == nil || !st.c.env.Pools.Exists(pool) {
		L.RaiseError("pool %q does not exist", pool)
	}
	return pool
}

// serverArgs reads server [, port] at n; both may be strings or numbers.
func serverArgs(L *lua.LState, n int) (string, int) {
	server, ok := optString(L, n)
	if !ok {
		L.ArgError(n, "server must be a string")
	}
	port := 0
	switch v := L.Get(n + 1).(type) {
	case *lua.LNilType:
	case lua.LNumber:
		port = int(v)
	case lua.LString:
		p, err := strconv.Atoi(string(v))
		if err != nil {
			L.ArgError(n+1, "port must be a number")
		}
		port = p
	default:
		L.ArgError(n+1, "port must be a number")
	}
	if port < 0 || port > 65535 {
		L.ArgError(n+1, "port must be 0 to 65535")
	}
	return server, port
}

func poolSelect(st *state, L *lua.LState) int {
	pool := st.pool(L, 1)
	server, port := "", 0
	if L.Get(2) != lua.LNil {
		server, port = serverArgs(L, 2)
		if _, known := st.c.env.Pools.ServerStatus(pool, server, port); !known {
			L.RaiseError("avi.pool.select: pool %q has no server %s port %d", pool, server, port)
		}
	}
	st.t.Pool, st.t.Server, st.t.Port = pool, server, port
	return 0
}
