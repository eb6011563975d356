package datascript

import (
	"bytes"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/dataplane/httpmsg"
)

// mReqEdit are the events in which the request line may still change.
const mReqEdit = mReq | mReqData | mLBDone

// responseStatuses are the statuses avi.http.response may send (Avi's
// list).
var responseStatuses = []int{200, 301, 302, 303, 307, 400, 401, 403, 404, 405, 413, 414, 429, 501, 503}

var (
	contentTypeName = []byte("Content-Type")
	textPlain       = []byte("text/plain")
	locationName    = []byte("Location")
)

func (st *state) httpLib() *lua.LTable {
	h := st.L.NewTable()
	const p = "avi.http."
	st.bind(h, p, "get_header", mHTTP, httpGetHeader)
	st.bind(h, p, "add_header", mHTTP, httpAddHeader)
	st.bind(h, p, "replace_header", mHTTP, httpReplaceHeader)
	st.bind(h, p, "remove_header", mHTTP, httpRemoveHeader)
	st.bind(h, p, "get_cookie", mHTTP, httpGetCookie)
	st.bind(h, p, "get_cookie_names", mHTTP, httpGetCookieNames)
	st.bind(h, p, "cookie_exists", mHTTP, httpCookieExists)
	st.bind(h, p, "add_cookie", mHTTP, httpAddCookie)
	st.bind(h, p, "replace_cookie", mHTTP, httpReplaceCookie)
	st.bind(h, p, "remove_cookie", mHTTP, httpRemoveCookie)
	st.bind(h, p, "get_path", mHTTP, httpGetPath)
	st.bind(h, p, "set_path", mReqEdit, httpSetPath)
	st.bind(h, p, "get_path_tokens", mHTTP, httpGetPathTokens)
	st.bind(h, p, "get_host_tokens", mHTTP, httpGetHostTokens)
	st.bind(h, p, "get_uri", mHTTP, httpGetURI)
	st.bind(h, p, "set_uri", mReqEdit, httpSetURI)
	st.bind(h, p, "get_query", mHTTP, httpGetQuery)
	st.bind(h, p, "set_query", mReqEdit, httpSetQuery)
	st.bind(h, p, "hostname", mHTTP, httpHostname)
	st.bind(h, p, "method", mHTTP, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(st.req(L).Method))
		return 1
	})
	st.bind(h, p, "protocol", mHTTP, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(strings.TrimSuffix(st.scheme(), "://")))
		return 1
	})
	st.bind(h, p, "scheme", mHTTP, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(st.scheme()))
		return 1
	})
	st.bind(h, p, "secure", mHTTP, func(st *state, L *lua.LState) int {
		if st.t.Secure {
			L.Push(lua.LString("on"))
		} else {
			L.Push(lua.LNil)
		}
		return 1
	})
	st.bind(h, p, "status", mRespPhase, func(st *state, L *lua.LState) int {
		L.Push(lua.LString(strconv.Itoa(st.resp(L).Status)))
		return 1
	})
	st.bind(h, p, "internal_status", mRespFailed, func(st *state, L *lua.LState) int {
		L.Push(lua.LNumber(st.t.InternalStatus))
		return 1
	})
	st.bind(h, p, "redirect", mReqPhase|mRespFailed, httpRedirect)
	st.bind(h, p, "response", mAll, httpResponse)
	st.bind(h, p, "send", mAll, httpResponse)
	st.bind(h, p, "close_conn", mHTTP, func(st *state, L *lua.LState) int {
		st.t.Action = Action{Kind: ActionClose, Reset: L.ToBool(1), Header: st.t.Action.Header[:0]}
		return st.stop()
	})
	st.bind(h, p, "get_userid", mHTTP, func(st *state, L *lua.LState) int {
		switch {
		case st.t.UserID != "":
			return pushStringOrNil(L, st.t.UserID)
		case st.t.UserIDFromAuth != "":
			return pushStringOrNil(L, st.t.UserIDFromAuth)
		case st.t.TLS != nil:
			return pushStringOrNil(L, st.t.TLS.ClientCertCommonName)
		}
		L.Push(lua.LNil)
		return 1
	})
	st.bind(h, p, "set_userid", mHTTP, func(st *state, L *lua.LState) int {
		st.t.UserID = L.CheckString(1)
		return 0
	})
	st.bind(h, p, "get_reqvar", mHTTP, func(st *state, L *lua.LState) int {
		L.Push(st.getReqvar(L, 1))
		return 1
	})
	st.bind(h, p, "set_reqvar", mHTTP, func(st *state, L *lua.LState) int {
		st.setReqvar(L, 1, 2)
		return 0
	})
	st.bind(h, p, "get_request_id", mHTTP, func(st *state, L *lua.LState) int {
		if st.t.RequestID == "" && st.t.RequestSeq != 0 {
			st.t.RequestID = strconv.FormatUint(st.t.RequestSeq, 36)
		}
		return pushStringOrNil(L, st.t.RequestID)
	})
	st.bind(h, p, "get_req_body", mReqData, func(st *state, L *lua.LState) int {
		return pushBody(L, st.t.ReqBody, L.OptInt(1, 0)*1024, 0)
	})
	st.bind(h, p, "set_request_body_buffer_size", mReq, func(st *state, L *lua.LState) int {
		st.t.ReqBodyBufferSize = bufferSize(L)
		return 0
	})
	st.bind(h, p, "set_response_body_buffer_size", mResp, func(st *state, L *lua.LState) int {
		st.t.RespBodyBufferSize = bufferSize(L)
		return 0
	})
	st.bind(h, p, "get_response_body", mRespData, func(st *state, L *lua.LState) int {
		return pushBody(L, st.t.RespBody, L.CheckInt(1)*1024, L.OptInt(2, 0))
	})
	st.bind(h, p, "set_server_timeout", mReqEdit, func(st *state, L *lua.LState) int {
		ms := L.CheckInt(1)
		if ms <= 0 || ms > 3_600_000 {
			L.ArgError(1, "timeout must be 1 to 3600000 ms")
		}
		st.t.ServerTimeout = time.Duration(ms) * time.Millisecond
		return 0
	})
	return h
}

// req and resp return the transaction's heads, raising a Lua error when
// the one asked for is missing.
func (st *state) req(L *lua.LState) *httpmsg.Request {
	if st.t.Req == nil {
		L.RaiseError("no request in this event")
	}
	return st.t.Req
}

func (st *state) resp(L *lua.LState) *httpmsg.Response {
	if st.t.Resp == nil {
		L.RaiseError("no response in this event")
	}
	return st.t.Resp
}

// fields returns the header fields of the current message, or of the one
// named by the context argument at n (avi.HTTP_REQUEST, avi.HTTP_RESPONSE)
// when n > 0 and the argument is given.
func (st *state) fields(L *lua.LState, n int) *httpmsg.Fields {
	resp := st.ev.isResponse()
	if n > 0 {
		if c, ok := L.Get(n).(lua.LNumber); ok {
			resp = c == ctxResponse
		}
	}
	if resp {
		return &st.resp(L).Fields
	}
	return &st.req(L).Fields
}

func (st *state) scheme() string {
	if st.t.Secure {
		return "https://"
	}
	return "http://"
}

func httpGetHeader(st *state, L *lua.LState) int {
	ctxArg := 2
	if _, ok := L.Get(1).(lua.LNumber); ok {
		ctxArg = 1
	}
	f := *st.fields(L, ctxArg)
	if ctxArg == 1 || L.Get(1) == lua.LNil {
		t := L.NewTable()
		for i := range f {
			name := string(f[i].Name)
			v := lua.LString(f[i].Value)
			addValue(L, t, name, v)
		}
		L.Push(t)
		return 1
	}
	name := L.CheckString(1)
	var first []byte
	n := 0
	for i := range f {
		if httpmsg.EqualFold(f[i].Name, name) {
			if n == 0 {
				first = f[i].Value
			}
			n++
		}
	}
	switch n {
	case 0:
		L.Push(lua.LNil)
	case 1:
		L.Push(lua.LString(first))
	default:
		t := L.CreateTable(n, 0)
		for i := range f {
			if httpmsg.EqualFold(f[i].Name, name) {
				t.Append(lua.LString(f[i].Value))
			}
		}
		L.Push(t)
	}
	return 1
}

func checkHeader(L *lua.LState, name, value string) {
	if name == "" || strings.IndexFunc(name, func(r rune) bool { return !isTokenChar(r) }) >= 0 {
		L.ArgError(1, "invalid header name")
	}
	if strings.ContainsAny(value, "\r\n\x00") {
		L.ArgError(2, "invalid header value")
	}
}

func isTokenChar(r rune) bool {
	return r < 0x7f && r > ' ' && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r)
}

func httpAddHeader(st *state, L *lua.LState) int {
	name, value := L.CheckString(1), L.CheckString(2)
	checkHeader(L, name, value)
	st.fields(L, 0).Add(name, value)
	return 0
}

func httpReplaceHeader(st *state, L *lua.LState) int {
	name, value := L.CheckString(1), L.CheckString(2)
	checkHeader(L, name, value)
	st.fields(L, 0).Replace(name, value)
	return 0
}

func httpRemoveHeader(st *state, L *lua.LState) int {
	st.fields(L, 0).Remove(L.CheckString(1))
	return 0
}

// splitTarget returns a request target's path and query (without '?'),
// skipping the scheme and authority of an absolute-form target.
func splitTarget(target []byte) (path, query []byte) {
	if i := bytes.Index(target, []byte("://")); i > 0 && target[0] != '/' {
		rest := target[i+3:]
		j := bytes.IndexAny(rest, "/?")
		if j < 0 {
			return []byte("/"), nil
		}
		target = rest[j:]
		if target[0] == '?' {
			return []byte("/"), target[1:]
		}
	}
	path, query, _ = bytes.Cut(target, []byte{'?'})
	return path, query
}

// authority returns the host of an absolute-form target.
func authority(target []byte) []byte {
	i := bytes.Index(target, []byte("://"))
	if i <= 0 || target[0] == '/' {
		return nil
	}
	rest := target[i+3:]
	if j := bytes.IndexAny(rest, "/?"); j >= 0 {
		rest = rest[:j]
	}
	if k := bytes.LastIndexByte(rest, '@'); k >= 0 {
		rest = rest[k+1:]
	}
	return rest
}

// decode percent-decodes s ('+' stays '+'); bad escapes stay as they are.
func decode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// wantDecoded reads the optional flag of get_path and get_uri: decoded
// unless false is passed.
func wantDecoded(L *lua.LState, n int) bool {
	return L.Get(n) != lua.LFalse
}

func httpGetPath(st *state, L *lua.LState) int {
	p, _ := splitTarget(st.req(L).Target)
	if wantDecoded(L, 1) {
		L.Push(lua.LString(decode(string(p))))
	} else {
		L.Push(lua.LString(p))
	}
	return 1
}

func checkPath(L *lua.LState, p string) {
	if !strings.HasPrefix(p, "/") {
		L.ArgError(1, "must start with /")
	}
	if strings.IndexFunc(p, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		L.ArgError(1, "must not hold spaces or control characters")
	}
}

func (st *state) setTarget(r *httpmsg.Request, target string) {
	r.Target = []byte(target)
	st.setURI()
}

func httpSetPath(st *state, L *lua.LState) int {
	r := st.req(L)
	p := L.CheckString(1)
	checkPath(L, p)
	_, q := splitTarget(r.Target)
	if bytes.IndexByte(r.Target, '?') >= 0 {
		p += "?" + string(q)
	}
	st.setTarget(r, p)
	return 0
}

func httpSetURI(st *state, L *lua.LState) int {
	r := st.req(L)
	u := L.CheckString(1)
	checkPath(L, u)
	st.setTarget(r, u)
	return 0
}

func httpGetURI(st *state, L *lua.LState) int {
	p, q := splitTarget(st.req(L).Target)
	u := string(p)
	if q != nil {
		u += "?" + string(q)
	}
	if wantDecoded(L, 1) {
		u = decode(u)
	}
	L.Push(lua.LString(u))
	return 1
}

// pushTokens implements get_path_tokens and get_host_tokens: no argument
// gives a table of the tokens; start [, end] gives the tokens start..end
// (end defaults to the last) joined with sep, or nil when out of range.
func pushTokens(L *lua.LState, tokens []string, sep string) int {
	if L.GetTop() == 0 {
		t := L.CreateTable(len(tokens), 0)
		for _, tok := range tokens {
			t.Append(lua.LString(tok))
		}
		L.Push(t)
		return 1
	}
	start := L.CheckInt(1)
	end := L.OptInt(2, len(tokens))
	if start < 1 || start > len(tokens) || end < start {
		L.Push(lua.LNil)
		return 1
	}
	end = min(end, len(tokens))
	L.Push(lua.LString(strings.Join(tokens[start-1:end], sep)))
	return 1
}

func httpGetPathTokens(st *state, L *lua.LState) int {
	p, _ := splitTarget(st.req(L).Target)
	var tokens []string
	for tok := range strings.SplitSeq(decode(string(p)), "/") {
		if tok != "" {
			tokens = append(tokens, tok)
		}
	}
	return pushTokens(L, tokens, "/")
}

func httpGetHostTokens(st *state, L *lua.LState) int {
	h := st.hostname(L)
	var tokens []string
	if h != "" {
		tokens = strings.Split(h, ".")
	}
	return pushTokens(L, tokens, ".")
}

// hostname is the host without its port, from the request line, then the
// Host header, then the TLS server name.
func (st *state) hostname(L *lua.LState) string {
	r := st.req(L)
	h := authority(r.Target)
	if len(h) == 0 {
		h, _ = r.Fields.Get("Host")
	}
	if len(h) == 0 && st.t.TLS != nil {
		return st.t.TLS.ServerName
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && !bytes.Contains(h[i:], []byte{']'}) {
		h = h[:i]
	}
	return string(h)
}

func httpHostname(st *state, L *lua.LState) int {
	return pushStringOrNil(L, st.hostname(L))
}

// queryArgs splits a raw query into its arguments; hasValue is false for
// an argument without '='.
type queryArg struct {
	key, value string
	hasValue   bool
}

func queryArgs(q string) []queryArg {
	var out []queryArg
	for part := range strings.SplitSeq(q, "&") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		out = append(out, queryArg{k, v, ok})
	}
	return out
}

func httpGetQuery(st *state, L *lua.LState) int {
	_, q := splitTarget(st.req(L).Target)
	query := string(q)
	decodeArg := L.Get(2) == lua.LTrue
	switch a := L.Get(1).(type) {
	case *lua.LNilType:
		if decodeArg {
			query = decode(query)
		}
		L.Push(lua.LString(query))
		return 1
	case lua.LNumber:
		if a == queryString {
			if decodeArg {
				query = decode(query)
			}
			L.Push(lua.LString(query))
			return 1
		}
		if a != queryTable {
			L.ArgError(1, "must be an argument name, avi.QUERY_STRING or avi.QUERY_TABLE")
		}
		t := L.NewTable()
		for _, qa := range queryArgs(query) {
			k := queryDecode(qa.key)
			var v lua.LValue = lua.LTrue
			if qa.hasValue {
				v = lua.LString(queryDecode(qa.value))
			}
			addValue(L, t, k, v)
		}
		L.Push(t)
		return 1
	}
	name := L.CheckString(1)
	for _, qa := range queryArgs(query) {
		if qa.key != name && queryDecode(qa.key) != name {
			continue
		}
		if !qa.hasValue {
			L.Push(lua.LTrue)
			return 1
		}
		v := qa.value
		if decodeArg {
			v = queryDecode(v)
		}
		L.Push(lua.LString(v))
		return 1
	}
	L.Push(lua.LNil)
	return 1
}

// queryDecode decodes a query component ('+' is a space).
func queryDecode(s string) string {
	if d, err := url.QueryUnescape(s); err == nil {
		return d
	}
	return decode(s)
}

func httpSetQuery(st *state, L *lua.LState) int {
	r := st.req(L)
	var q string
	switch v := L.Get(1).(type) {
	case lua.LNumber:
		q = v.String()
	case lua.LString:
		q = strings.TrimPrefix(string(v), "?")
	case *lua.LTable:
		var keys []string
		v.ForEach(func(k, _ lua.LValue) {
			if s, ok := k.(lua.LString); ok {
				keys = append(keys, string(s))
			}
		})
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			ek := url.QueryEscape(k)
			var add func(lua.LValue)
			add = func(val lua.LValue) {
				switch x := val.(type) {
				case lua.LBool:
					if x {
						parts = append(parts, ek)
					}
				case *lua.LTable:
					for i := 1; i <= x.Len(); i++ {
						add(x.RawGetInt(i))
					}
				default:
					parts = append(parts, ek+"="+url.QueryEscape(lua.LVAsString(val)))
				}
			}
			add(v.RawGetString(k))
		}
		q = strings.Join(parts, "&")
	default:
		L.ArgError(1, "must be a number, a string or a table")
	}
	if strings.IndexFunc(q, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }) >= 0 {
		L.ArgError(1, "must not hold spaces, '#' or control characters")
	}
	p, _ := splitTarget(r.Target)
	target := string(p)
	if q != "" {
		target += "?" + q
	}
	st.setTarget(r, target)
	return 0
}

func httpRedirect(st *state, L *lua.LState) int {
	uri := L.CheckString(1)
	status := L.OptInt(2, 302)
	if status != 301 && status != 302 && status != 307 {
		L.ArgError(2, "status must be 301, 302 or 307")
	}
	if strings.ContainsAny(uri, "\r\n\x00") {
		L.ArgError(1, "invalid URI")
	}
	hdr := append(st.t.Action.Header[:0], httpmsg.Field{Name: locationName, Value: []byte(uri)})
	st.t.Action = Action{Kind: ActionRespond, Status: status, Header: hdr}
	return st.stop()
}

// httpResponse is avi.http.response and avi.http.send: status [, headers
// [, body]]. In header names '_' becomes '-'; the content type defaults to
// text/plain.
func httpResponse(st *state, L *lua.LState) int {
	status := L.CheckInt(1)
	if !slices.Contains(responseStatuses, status) {
		L.ArgError(1, "unsupported status "+strconv.Itoa(status))
	}
	hdr := st.t.Action.Header[:0]
	typed := false
	if t, ok := L.Get(2).(*lua.LTable); ok {
		var keys []string
		t.ForEach(func(k, _ lua.LValue) {
			if s, ok := k.(lua.LString); ok {
				keys = append(keys, string(s))
			}
		})
		slices.Sort(keys)
		for _, k := range keys {
			name := strings.ReplaceAll(k, "_", "-")
			var add func(lua.LValue)
			add = func(v lua.LValue) {
				if list, ok := v.(*lua.LTable); ok {
					for i := 1; i <= list.Len(); i++ {
						add(list.RawGetInt(i))
					}
					return
				}
				value := lua.LVAsString(v)
				checkHeader(L, name, value)
				hdr = append(hdr, httpmsg.Field{Name: []byte(name), Value: []byte(value)})
			}
			add(t.RawGetString(k))
			if strings.EqualFold(name, "Content-Type") {
				typed = true
			}
		}
	} else if L.Get(2) != lua.LNil {
		L.ArgError(2, "headers must be a table")
	}
	if !typed {
		hdr = append(hdr, httpmsg.Field{Name: contentTypeName, Value: textPlain})
	}
	var body []byte
	if s, ok := optString(L, 3); ok {
		body = []byte(s)
	}
	st.t.Action = Action{Kind: ActionRespond, Status: status, Header: hdr, Body: body}
	return st.stop()
}

func bufferSize(L *lua.LState) int {
	kb := L.CheckInt(1)
	if kb < 1 || kb > 32768 {
		L.ArgError(1, "size must be 1 to 32768 KB")
	}
	return kb * 1024
}

// pushBody pushes body[offset:offset+size] (size 0: to the end), or nil
// when there is no body.
func pushBody(L *lua.LState, body []byte, size, offset int) int {
	if body == nil || offset < 0 || offset > len(body) {
		L.Push(lua.LNil)
		return 1
	}
	b := body[offset:]
	if size > 0 && size < len(b) {
		b = b[:size]
	}
	L.Push(lua.LString(b))
	return 1
}

// addValue sets t[key] to v, or, when key is set already, makes it a list
// of its values (a repeated header or query argument).
func addValue(L *lua.LState, t *lua.LTable, key string, v lua.LValue) {
	switch prev := t.RawGetString(key).(type) {
	case *lua.LNilType:
		t.RawSetString(key, v)
	case *lua.LTable:
		prev.Append(v)
	default:
		list := L.NewTable()
		list.Append(prev)
		list.Append(v)
		t.RawSetString(key, list)
	}
}
