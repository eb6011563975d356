package datascript

import (
	lua "github.com/yuin/gopher-lua"
)

// gofn is an avi.* function: it reads its arguments from L and the
// transaction from st.
type gofn func(st *state, L *lua.LState) int

// bind sets t[name] to f, refusing calls in events outside mask with a
// Lua error naming the function and the event.
func (st *state) bind(t *lua.LTable, prefix, name string, mask evMask, f gofn) {
	qual := prefix + name
	t.RawSetString(name, st.L.NewFunction(func(L *lua.LState) int {
		if st.evBit&mask == 0 {
			L.RaiseError("%s is not allowed in %s", qual, shortEvent(eventNames[st.ev]))
		}
		return f(st, L)
	}))
}

// Values of the avi.* constants that are not numbers of HTTP.
const (
	ctxRequest  = 1
	ctxResponse = 2

	queryString = 1
	queryTable  = 2

	cipherAES  = 1
	cipher3DES = 2

	rlCustomString     = "RL_CUSTOM_STRING"
	rlActionCloseConn  = "RL_ACTION_CLOSE_CONN"
	rlActionLocalRsp   = "RL_ACTION_LOCAL_RSP"
	rlActionRedirect   = "RL_ACTION_REDIRECT"
	rlActionNone       = "RL_ACTION_NONE"
	clientCert         = "avi.CLIENT_CERT"
	clientCertFinger   = "avi.CLIENT_CERT_FINGERPRINT"
	clientCertSubject  = "avi.CLIENT_CERT_SUBJECT"
	clientCertIssuer   = "avi.CLIENT_CERT_ISSUER"
	clientCertSerial   = "avi.CLIENT_CERT_SERIAL"
	clientCertNoPrefix = "CLIENT_CERT"
)

// constants are avi.*'s constants. HTTP methods are their names, statuses
// their numbers; the client-certificate fields are their own names
// ("avi.CLIENT_CERT_ISSUER"), since Avi's examples pass them quoted.
var constants = map[string]lua.LValue{
	"HTTP_GET": lua.LString("GET"), "HTTP_POST": lua.LString("POST"), "HTTP_PUT": lua.LString("PUT"),
	"HTTP_HEAD": lua.LString("HEAD"), "HTTP_DELETE": lua.LString("DELETE"), "HTTP_OPTIONS": lua.LString("OPTIONS"),
	"HTTP_MKCOL": lua.LString("MKCOL"), "HTTP_COPY": lua.LString("COPY"), "HTTP_MOVE": lua.LString("MOVE"),
	"HTTP_PROPFIND": lua.LString("PROPFIND"), "HTTP_PROPPATCH": lua.LString("PROPPATCH"),
	"HTTP_PATCH": lua.LString("PATCH"), "HTTP_LOCK": lua.LString("LOCK"), "HTTP_UNLOCK": lua.LString("UNLOCK"),
	"HTTP_TRACE": lua.LString("TRACE"),

	"HTTP_OK": lua.LNumber(200), "HTTP_CREATED": lua.LNumber(201),
	"HTTP_MOVED_PERMANENTLY": lua.LNumber(301), "HTTP_MOVED_TEMPORARILY": lua.LNumber(302),
	"HTTP_NOT_MODIFIED": lua.LNumber(304), "HTTP_TEMPORARY_REDIRECT": lua.LNumber(307),
	"HTTP_BAD_REQUEST": lua.LNumber(400), "HTTP_UNAUTHORIZED": lua.LNumber(401),
	"HTTP_FORBIDDEN": lua.LNumber(403), "HTTP_NOT_FOUND": lua.LNumber(404),
	"HTTP_NOT_ALLOWED": lua.LNumber(405), "HTTP_INTERNAL_SERVER_ERROR": lua.LNumber(500),
	"HTTP_METHOD_NOT_IMPLEMENTED": lua.LNumber(501), "HTTP_SERVICE_UNAVAILABLE": lua.LNumber(503),
	"HTTP_GATEWAY_TIMEOUT": lua.LNumber(504),

	"CIPHER_AES": lua.LNumber(cipherAES), "CIPHER_3DES": lua.LNumber(cipher3DES),
	"QUERY_STRING": lua.LNumber(queryString), "QUERY_TABLE": lua.LNumber(queryTable),
	"HTTP_REQUEST": lua.LNumber(ctxRequest), "HTTP_RESPONSE": lua.LNumber(ctxResponse),

	"CLIENT_CERT": lua.LString(clientCert), "CLIENT_CERT_FINGERPRINT": lua.LString(clientCertFinger),
	"CLIENT_CERT_SUBJECT": lua.LString(clientCertSubject), "CLIENT_CERT_ISSUER": lua.LString(clientCertIssuer),
	"CLIENT_CERT_SERIAL": lua.LString(clientCertSerial),

	"RL_CUSTOM_STRING": lua.LString(rlCustomString), "RL_ACTION_CLOSE_CONN": lua.LString(rlActionCloseConn),
	"RL_ACTION_LOCAL_RSP": lua.LString(rlActionLocalRsp), "RL_ACTION_REDIRECT": lua.LString(rlActionRedirect),
	"RL_ACTION_NONE": lua.LString(rlActionNone),
}

// aviLib builds the real avi table of a state.
func (st *state) aviLib() *lua.LTable {
	avi := st.L.NewTable()
	for k, v := range constants {
		avi.RawSetString(k, v)
	}
	st.http = st.httpLib()
	avi.RawSetString("vs", st.readOnly(st.vsLib()))
	avi.RawSetString("http", st.readOnly(st.http))
	avi.RawSetString("pool", st.readOnly(st.poolLib()))
	avi.RawSetString("stringgroup", st.readOnly(st.stringGroupLib()))
	avi.RawSetString("ipgroup", st.readOnly(st.ipGroupLib()))
	avi.RawSetString("utils", st.readOnly(st.utilsLib()))
	avi.RawSetString("crypto", st.readOnly(st.cryptoLib()))
	avi.RawSetString("ssl", st.readOnly(st.sslLib()))
	return avi
}

// optString returns argument n as a string when it is a string or number.
func optString(L *lua.LState, n int) (string, bool) {
	switch v := L.Get(n).(type) {
	case lua.LString:
		return string(v), true
	case lua.LNumber:
		return v.String(), true
	}
	return "", false
}

// pushString pushes s, or nil when s is empty.
func pushStringOrNil(L *lua.LState, s string) int {
	if s == "" {
		L.Push(lua.LNil)
	} else {
		L.Push(lua.LString(s))
	}
	return 1
}
