package datascript

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/vigilhq/vigil/dataplane/httpmsg"
)

// A request's cookies are the name=value pairs of its Cookie headers; a
// response's are the Set-Cookie headers, named by what precedes the first
// '='.

type cookie struct{ name, value string }

// cookies returns the cookies of the request or response fields.
func cookies(f httpmsg.Fields, resp bool) []cookie {
	var out []cookie
	for i := range f {
		if resp {
			if !httpmsg.EqualFold(f[i].Name, "Set-Cookie") {
				continue
			}
			nv, _, _ := strings.Cut(string(f[i].Value), ";")
			n, v, _ := strings.Cut(nv, "=")
			out = append(out, cookie{strings.TrimSpace(n), strings.TrimSpace(v)})
			continue
		}
		if !httpmsg.EqualFold(f[i].Name, "Cookie") {
			continue
		}
		for part := range strings.SplitSeq(string(f[i].Value), ";") {
			n, v, _ := strings.Cut(part, "=")
			if n = strings.TrimSpace(n); n != "" {
				out = append(out, cookie{n, strings.TrimSpace(v)})
			}
		}
	}
	return out
}

// cookieFields returns the fields and whether they are a response's, for
// a getter with its context argument at n.
func (st *state) cookieFields(L *lua.LState, n int) (*httpmsg.Fields, bool) {
	resp := st.ev.isResponse()
	if c, ok := L.Get(n).(lua.LNumber); ok && n > 0 {
		resp = c == ctxResponse
	}
	if resp {
		return &st.resp(L).Fields, true
	}
	return &st.req(L).Fields, false
}

func httpGetCookie(st *state, L *lua.LState) int {
	name := L.CheckString(1)
	f, resp := st.cookieFields(L, 2)
	for _, c := range cookies(*f, resp) {
		if c.name == name {
			L.Push(lua.LString(c.value))
			return 1
		}
	}
	L.Push(lua.LNil)
	return 1
}

func httpGetCookieNames(st *state, L *lua.LState) int {
	f, resp := st.cookieFields(L, 1)
	cs := cookies(*f, resp)
	t := L.CreateTable(len(cs), 0)
	for _, c := range cs {
		t.Append(lua.LString(c.name))
	}
	L.Push(t)
	L.Push(lua.LNumber(len(cs)))
	return 2
}

func httpCookieExists(st *state, L *lua.LState) int {
	name := L.CheckString(1)
	f, resp := st.cookieFields(L, 2)
	L.Push(lua.LBool(slices.ContainsFunc(cookies(*f, resp), func(c cookie) bool { return c.name == name })))
	return 1
}

// setCookie is one cookie to write, with the attributes of a response
// cookie.
type setCookie struct {
	name, value, path, domain string
	expires, maxAge           int64
	httpOnly, secure          bool
}

func (c *setCookie) String() string {
	var b strings.Builder
	b.WriteString(c.name + "=" + c.value)
	if c.path != "" {
		b.WriteString("; Path=" + c.path)
	}
	if c.domain != "" {
		b.WriteString("; Domain=" + c.domain)
	}
	if c.expires > 0 {
		b.WriteString("; Expires=" + time.Unix(c.expires, 0).UTC().Format(http.TimeFormat))
	}
	if c.maxAge > 0 {
		b.WriteString("; Max-Age=" + strconv.FormatInt(c.maxAge, 10))
	}
	if c.httpOnly {
		b.WriteString("; HttpOnly")
	}
	if c.secure {
		b.WriteString("; Secure")
	}
	return b.String()
}

var cookieAttrs = []string{"path", "domain", "expires", "maxage", "max-age", "max_age", "httponly", "secure"}

// cookieArgs reads the arguments of add_cookie and replace_cookie. In a
// request they are name, value pairs or a table of them. In a response
// they are (name, value, path, domain, expires, maxage, httponly, secure)
// or a table with one cookie and those attributes; expires is a Unix time
// and 0 leaves an attribute out.
func cookieArgs(L *lua.LState, resp bool) []setCookie {
	if t, ok := L.Get(1).(*lua.LTable); ok {
		var out []setCookie
		var attrs setCookie
		t.ForEach(func(k, v lua.LValue) {
			ks, ok := k.(lua.LString)
			if !ok {
				return
			}
			name := string(ks)
			if resp && slices.Contains(cookieAttrs, strings.ToLower(name)) {
				switch strings.ToLower(name) {
				case "path":
					attrs.path = lua.LVAsString(v)
				case "domain":
					attrs.domain = lua.LVAsString(v)
				case "expires":
					attrs.expires = int64(lua.LVAsNumber(v))
				case "httponly":
					attrs.httpOnly = lua.LVAsBool(v)
				case "secure":
					attrs.secure = lua.LVAsBool(v)
				default:
					attrs.maxAge = int64(lua.LVAsNumber(v))
				}
				return
			}
			out = append(out, setCookie{name: name, value: lua.LVAsString(v)})
		})
		slices.SortFunc(out, func(a, b setCookie) int { return strings.Compare(a.name, b.name) })
		for i := range out {
			n, v := out[i].name, out[i].value
			out[i] = attrs
			out[i].name, out[i].value = n, v
		}
		return out
	}
	if resp {
		c := setCookie{name: L.CheckString(1), value: L.CheckString(2)}
		c.path, _ = optString(L, 3)
		c.domain, _ = optString(L, 4)
		c.expires = int64(L.OptNumber(5, 0))
		c.maxAge = int64(L.OptNumber(6, 0))
		c.httpOnly = L.ToBool(7)
		c.secure = L.ToBool(8)
		return []setCookie{c}
	}
	var out []setCookie
	for i := 1; i <= L.GetTop(); i += 2 {
		out = append(out, setCookie{name: L.CheckString(i), value: L.CheckString(i + 1)})
	}
	return out
}

func checkCookies(L *lua.LState, cs []setCookie) {
	for _, c := range cs {
		if c.name == "" || strings.ContainsAny(c.name, "=; \t\r\n,") {
			L.ArgError(1, "invalid cookie name")
		}
		if strings.ContainsAny(c.value+c.path+c.domain, ";\r\n\x00") {
			L.ArgError(2, "invalid cookie value or attribute")
		}
	}
}

func httpAddCookie(st *state, L *lua.LState) int {
	resp := st.ev.isResponse()
	cs := cookieArgs(L, resp)
	checkCookies(L, cs)
	addCookies(st.fields(L, 0), cs, resp)
	return 0
}

func addCookies(f *httpmsg.Fields, cs []setCookie, resp bool) {
	if resp {
		for i := range cs {
			f.Add("Set-Cookie", cs[i].String())
		}
		return
	}
	var b strings.Builder
	if v, ok := f.Get("Cookie"); ok && len(v) > 0 {
		b.Write(v)
	}
	for _, c := range cs {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.name + "=" + c.value)
	}
	if b.Len() > 0 {
		f.Replace("Cookie", b.String())
	}
}

func httpReplaceCookie(st *state, L *lua.LState) int {
	resp := st.ev.isResponse()
	cs := cookieArgs(L, resp)
	checkCookies(L, cs)
	f := st.fields(L, 0)
	names := make([]string, len(cs))
	for i := range cs {
		names[i] = cs[i].name
	}
	removeCookies(f, names, resp)
	addCookies(f, cs, resp)
	return 0
}

func httpRemoveCookie(st *state, L *lua.LState) int {
	var names []string
	for i := 1; i <= L.GetTop(); i++ {
		names = append(names, L.CheckString(i))
	}
	removeCookies(st.fields(L, 0), names, st.ev.isResponse())
	return 0
}

// removeCookies removes every cookie named in names: Set-Cookie headers
// of a response, pairs of a request's Cookie headers (dropping a header
// left empty).
func removeCookies(f *httpmsg.Fields, names []string, resp bool) {
	out := (*f)[:0]
	for _, fl := range *f {
		switch {
		case resp && httpmsg.EqualFold(fl.Name, "Set-Cookie"):
			nv, _, _ := strings.Cut(string(fl.Value), ";")
			n, _, _ := strings.Cut(nv, "=")
			if slices.Contains(names, strings.TrimSpace(n)) {
				continue
			}
		case !resp && httpmsg.EqualFold(fl.Name, "Cookie"):
			var kept []string
			changed := false
			for part := range strings.SplitSeq(string(fl.Value), ";") {
				n, _, _ := strings.Cut(part, "=")
				if slices.Contains(names, strings.TrimSpace(n)) {
					changed = true
					continue
				}
				if strings.TrimSpace(part) != "" {
					kept = append(kept, strings.TrimSpace(part))
				}
			}
			if changed {
				if len(kept) == 0 {
					continue
				}
				fl.Value = []byte(strings.Join(kept, "; "))
			}
		}
		out = append(out, fl)
	}
	clear((*f)[len(out):])
	*f = out
}
