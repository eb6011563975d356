package dataplane

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/dataplane/spec"
)

// The tests here run DataScripts as Avi users write them through the
// proxy, with real servers on loopback, and check what the client and the
// servers see.

const (
	evtReq      = spec.EvtHTTPReq
	evtReqData  = spec.EvtHTTPReqData
	evtResp     = spec.EvtHTTPResp
	evtLBDone   = spec.EvtHTTPLBDone
	evtLBFailed = spec.EvtHTTPLBFailed
	evtRespData = spec.EvtHTTPRespData
	evtRespFail = spec.EvtHTTPRespFailed
)

// chunks makes a DataScriptSet's datascript list from event, script pairs.
func chunks(evtScript ...string) []spec.DataScript {
	var out []spec.DataScript
	for i := 0; i+1 < len(evtScript); i += 2 {
		out = append(out, spec.DataScript{Evt: evtScript[i], Script: evtScript[i+1]})
	}
	return out
}

func specJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// attachScripts stores ds as the DataScriptSet "ds" and makes the virtual
// service "vs" run it, on the address it already listens on; vsExtra is
// more of the virtual service's spec (`, "key": value`).
func (r *rig) attachScripts(t *testing.T, ds spec.DataScriptSet, vsExtra string) {
	t.Helper()
	r.store.put(spec.KindDataScriptSet, "ds", specJSON(t, ds))
	r.store.put(spec.KindVirtualService, "vs",
		`{"listen": "`+r.proxy.Addr("vs")+`", "pool": "web", "datascripts": ["ds"]`+vsExtra+`}`)
}

// serverAddr is a test server's IP and port.
func serverAddr(s *httptest.Server) (string, string) {
	h, p, _ := net.SplitHostPort(s.Listener.Addr().String())
	return h, p
}

// do sends a request and returns the response with its body read.
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// status is a GET's status, or 0 when it failed.
func status(c *http.Client, url string) int {
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// noRedirects is a client that returns redirects instead of following them.
func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestAviSecureExampleOverKeepAlive: `if avi.http.uri == "/secure/" then
// avi.http.send(403) end` answers 403 on /secure/ only (the field is the
// path without its query) and proxies the rest, several requests on one
// client connection, which the local answers leave open.
func TestAviSecureExampleOverKeepAlive(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		fmt.Fprintf(w, "backend %s", r.URL.RequestURI())
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq,
		`if avi.http.uri == "/secure/" then avi.http.send(403) end`)}, "")
	waitFor(t, "the script", 5*time.Second, func() bool { return status(http.DefaultClient, r.url("/secure/")) == 403 })
	mu.Lock()
	seen = nil
	mu.Unlock()

	c, err := net.Dial("tcp", r.proxy.Addr("vs"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	cases := []struct {
		path string
		want int
	}{
		{"/", 200},
		{"/secure/", 403},
		{"/secure/x", 200},
		{"/secure", 200},
		{"/secure/?a=1", 403},
		{"/secure/", 403},
		{"/public", 200},
		{"/SECURE/", 200},
		{"/secure/", 403},
		{"/last", 200},
	}
	var want []string
	for i, tc := range cases {
		req, _ := http.NewRequest("GET", "http://shop.example"+tc.path, nil)
		if err := req.Write(c); err != nil {
			t.Fatalf("request %d (%s): the connection was not kept: %v", i, tc.path, err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("request %d (%s): the connection was not kept: %v", i, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.want || resp.Close {
			t.Fatalf("%s: %d (close %v) %q, want %d on a kept connection", tc.path, resp.StatusCode, resp.Close, body, tc.want)
		}
		if tc.want == 200 {
			want = append(want, tc.path)
			if string(body) != "backend "+tc.path {
				t.Fatalf("%s: body %q", tc.path, body)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		t.Fatalf("the backend saw %q, want %q", seen, want)
	}
}

// TestAviXForwardedFor: a script that sets X-Forwarded-For to the client's
// address replaces what the client claimed; the backend sees the address
// the script gave, once.
func TestAviXForwardedFor(t *testing.T) {
	xff := make(chan []string, 10)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		xff <- r.Header.Values("X-Forwarded-For")
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	get := func(spoof string) []string {
		hdr := map[string]string{}
		if spoof != "" {
			hdr["X-Forwarded-For"] = spoof
		}
		resp, _ := do(t, http.DefaultClient, "GET", r.url("/"), nil, hdr)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return <-xff
	}
	// Without a script the proxy appends the client's address.
	if got := get("203.0.113.9"); strings.Join(got, "|") != "203.0.113.9, 127.0.0.1" {
		t.Fatalf("without a script the backend saw X-Forwarded-For %q", got)
	}
	// Of several fields, the last one gets it.
	req, _ := http.NewRequest("GET", r.url("/"), nil)
	req.Header.Add("X-Forwarded-For", "198.51.100.1")
	req.Header.Add("X-Forwarded-For", "198.51.100.2")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := <-xff; strings.Join(got, "|") != "198.51.100.1|198.51.100.2, 127.0.0.1" {
		t.Fatalf("two fields: the backend saw X-Forwarded-For %q", got)
	}

	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq,
		`avi.http.replace_header("X-Forwarded-For", avi.vs.client_ip())`)}, "")
	waitFor(t, "the script", 5*time.Second, func() bool { return !strings.Contains(strings.Join(get("203.0.113.9"), ","), "203.0.113.9") })
	for _, spoof := range []string{"203.0.113.9", "10.1.2.3, 10.4.5.6", ""} {
		if got := get(spoof); strings.Join(got, "|") != "127.0.0.1" {
			t.Fatalf("client sent %q: the backend saw X-Forwarded-For %q, want the client's address once", spoof, got)
		}
	}

	// add_header appends a field: the backend gets the client's fields
	// and the script's.
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq,
		`avi.http.add_header("X-Forwarded-For", avi.vs.client_ip())`)}, "")
	waitFor(t, "the new script", 5*time.Second, func() bool { return len(get("203.0.113.9")) == 2 })
	if got := get("203.0.113.9"); strings.Join(got, "|") != "203.0.113.9|127.0.0.1" {
		t.Fatalf("add_header: the backend saw X-Forwarded-For %q", got)
	}
	if got := get(""); strings.Join(got, "|") != "127.0.0.1" {
		t.Fatalf("add_header without a client header: the backend saw X-Forwarded-For %q", got)
	}
}

// TestAviRedirectToHTTPS: a plain-HTTP request is redirected with 301 to
// the same host and URI over HTTPS, and the server is not asked.
func TestAviRedirectToHTTPS(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReq, `
if avi.http.protocol() == "http" then
  avi.http.redirect("https://" .. avi.http.hostname() .. avi.http.get_uri(), 301)
end`)}, "")
	c := noRedirects()
	waitFor(t, "the script", 5*time.Second, func() bool { return status(c, r.url("/")) == 301 })
	hits.Store(0)
	for path, want := range map[string]string{
		"/":                     "https://shop.example/",
		"/cart?id=7&coupon=abc": "https://shop.example/cart?id=7&coupon=abc",
		"/a/b/c.html":           "https://shop.example/a/b/c.html",
	} {
		resp, _ := do(t, c, "GET", r.url(path), nil, map[string]string{"Host": "shop.example:8080"})
		if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Fatalf("%s: %d Location %q, want 301 %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the backend got %d requests, want none", n)
	}
}

// TestAviPoolFallbackAndMaintenancePage: while a server of pool "web" is
// up it serves; with none up the pool "backup" does; with neither the
// script answers a 503 maintenance page.
func TestAviPoolFallbackAndMaintenancePage(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "web") }))
	defer web.Close()
	backup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "backup") }))
	defer backup.Close()
	pool := func(s *httptest.Server, enabled bool) string {
		h, p := serverAddr(s)
		return fmt.Sprintf(`{"servers": [{"ip": %q, "port": %s, "enabled": %v}]}`, h, p, enabled)
	}
	r := newRig(t, pool(web, true), "")
	r.store.put(spec.KindPool, "backup", pool(backup, true))
	r.attachScripts(t, spec.DataScriptSet{PoolRefs: []string{"web", "backup"}, DataScript: chunks(evtReq, `
local up = avi.pool.get_servers("web")
if up == 0 then
  local backup_up = avi.pool.get_servers("backup")
  if backup_up > 0 then
    avi.pool.select("backup")
  else
    avi.http.response(503, {content_type = "text/html"}, "<h1>maintenance</h1>")
  end
end`)}, "")
	get := func() (int, string, string) {
		resp, body := do(t, http.DefaultClient, "GET", r.url("/"), nil, nil)
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}
	waitFor(t, "the script", 5*time.Second, func() bool { _, _, b := get(); return b == "web" })

	r.store.put(spec.KindPool, "web", pool(web, false))
	waitFor(t, "the backup pool", 5*time.Second, func() bool { _, _, b := get(); return b == "backup" })
	for range 5 {
		if code, _, body := get(); code != 200 || body != "backup" {
			t.Fatalf("web down: %d %q, want the backup pool", code, body)
		}
	}

	r.store.put(spec.KindPool, "backup", pool(backup, false))
	waitFor(t, "the maintenance page", 5*time.Second, func() bool { c, _, _ := get(); return c == 503 })
	if code, ctype, body := get(); code != 503 || ctype != "text/html" || body != "<h1>maintenance</h1>" {
		t.Fatalf("both down: %d %q %q", code, ctype, body)
	}

	r.store.put(spec.KindPool, "web", pool(web, true))
	waitFor(t, "web back", 5*time.Second, func() bool { _, _, b := get(); return b == "web" })
}

// TestAviURISwitching: /api/* goes to the pool "api", the rest to "web".
func TestAviURISwitching(t *testing.T) {
	named := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s", name, r.URL.Path)
		}))
	}
	web, api := named("web"), named("api")
	defer web.Close()
	defer api.Close()
	r := newRig(t, poolOf(web), "")
	r.store.put(spec.KindPool, "api", poolOf(api))
	r.attachScripts(t, spec.DataScriptSet{PoolRefs: []string{"api", "web"}, DataScript: chunks(evtReq, `
if string.beginswith(avi.http.get_path(), "/api/") then
  avi.pool.select("api")
else
  avi.pool.select("web")
end`)}, "")
	get := func(path string) string { _, b := do(t, http.DefaultClient, "GET", r.url(path), nil, nil); return b }
	waitFor(t, "the script", 5*time.Second, func() bool { return get("/api/x") == "api /api/x" })
	for path, want := range map[string]string{
		"/api/users":     "api /api/users",
		"/api/v2/orders": "api /api/v2/orders",
		"/api":           "web /api",
		"/apix/y":        "web /apix/y",
		"/":              "web /",
		"/static/api/a":  "web /static/api/a",
	} {
		if got := get(path); got != want {
			t.Fatalf("%s went to %q, want %q", path, got, want)
		}
	}
}

// TestAviJSESSIONIDPersistence: the response script remembers which server
// set a JSESSIONID, in a table; the request script sends requests with
// that cookie to that server. The two servers have their own loopback
// addresses, as avi.pool.server_ip() gives the address alone.
func TestAviJSESSIONIDPersistence(t *testing.T) {
	var servers []*httptest.Server
	var hits [2]atomic.Int64
	for i, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ip, err)
		}
		var sessions atomic.Int64
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			if _, err := r.Cookie("JSESSIONID"); err != nil {
				http.SetCookie(w, &http.Cookie{Name: "JSESSIONID", Value: fmt.Sprintf("s%d-%d", i, sessions.Add(1)), Path: "/"})
			}
			fmt.Fprintf(w, "server%d", i)
		}))
		s.Listener.Close()
		s.Listener = l
		s.Start()
		defer s.Close()
		servers = append(servers, s)
	}
	r := newRig(t, poolOf(servers...), "")
	r.attachScripts(t, spec.DataScriptSet{PoolRefs: []string{"web"}, DataScript: chunks(
		evtReq, `
local sid = avi.http.get_cookie("JSESSIONID")
if sid then
  local server = avi.vs.table_lookup(sid)
  if server then
    avi.pool.select("web", server)
  end
end`,
		evtResp, `
local sid = avi.http.get_cookie("JSESSIONID")
if sid then
  avi.vs.table_insert(sid, avi.pool.server_ip())
end`)}, "")

	// login starts a session and returns its cookie and server.
	login := func() (string, string) {
		resp, body := do(t, http.DefaultClient, "GET", r.url("/login"), nil, nil)
		for _, c := range resp.Cookies() {
			if c.Name == "JSESSIONID" {
				return c.Value, body
			}
		}
		t.Fatalf("no JSESSIONID from %s", body)
		return "", ""
	}
	withCookie := func(sid string) string {
		_, body := do(t, http.DefaultClient, "GET", r.url("/cart"), nil, map[string]string{"Cookie": "theme=dark; JSESSIONID=" + sid})
		return body
	}
	// The script is in place once a session sticks for a run of requests
	// that round robin would spread.
	waitFor(t, "the scripts", 5*time.Second, func() bool {
		sid, home := login()
		for range 4 {
			if withCookie(sid) != home {
				return false
			}
		}
		return true
	})

	sessions := map[string]string{}
	for range 6 {
		sid, home := login()
		sessions[sid] = home
	}
	homes := map[string]bool{}
	for _, h := range sessions {
		homes[h] = true
	}
	if len(homes) != 2 {
		t.Fatalf("six logins went to %v, want both servers", homes)
	}
	for round := range 5 {
		for sid, home := range sessions {
			if got := withCookie(sid); got != home {
				t.Fatalf("round %d: session %s went to %s, want %s", round, sid, got, home)
			}
		}
	}
	// A cookie the table does not know is balanced as usual.
	got := map[string]bool{}
	for range 6 {
		got[withCookie("unknown")] = true
	}
	if len(got) != 2 {
		t.Fatalf("an unknown session went to %v, want both servers", got)
	}
}

// TestAviCORS: the request script keeps the Origin in a reqvar and
// answers preflights itself; the response script adds
// Access-Control-Allow-Origin from the reqvar.
func TestAviCORS(t *testing.T) {
	var preflights atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "OPTIONS" {
			preflights.Add(1)
		}
		fmt.Fprint(w, "data")
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	// 204 is not among the statuses Avi lets avi.http.response send: a
	// preflight is answered with 200.
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(
		evtReq, `
local origin = avi.http.get_header("Origin")
avi.vs.reqvar.origin = origin
if origin and avi.http.method() == avi.HTTP_OPTIONS then
  avi.http.response(200, {
    Access_Control_Allow_Origin = origin,
    Access_Control_Allow_Methods = "GET, POST, PUT, DELETE",
    Access_Control_Allow_Headers = avi.http.get_header("Access-Control-Request-Headers") or "Content-Type",
    Access_Control_Max_Age = "86400",
    Vary = "Origin",
  })
end`,
		evtResp, `
local origin = avi.vs.reqvar.origin
if origin then
  avi.http.add_header("Access-Control-Allow-Origin", origin)
  avi.http.add_header("Vary", "Origin")
end`)}, "")
	const origin = "https://app.example"
	waitFor(t, "the scripts", 5*time.Second, func() bool {
		resp, _ := do(t, http.DefaultClient, "GET", r.url("/"), nil, map[string]string{"Origin": origin})
		return resp.Header.Get("Access-Control-Allow-Origin") == origin
	})

	resp, body := do(t, http.DefaultClient, "OPTIONS", r.url("/api/items"), nil, map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "X-Token",
	})
	h := resp.Header
	if resp.StatusCode != 200 || body != "" || h.Get("Access-Control-Allow-Origin") != origin ||
		h.Get("Access-Control-Allow-Methods") != "GET, POST, PUT, DELETE" || h.Get("Access-Control-Allow-Headers") != "X-Token" ||
		h.Get("Access-Control-Max-Age") != "86400" {
		t.Fatalf("preflight: %d %q %v", resp.StatusCode, body, h)
	}
	if n := preflights.Load(); n != 0 {
		t.Fatalf("the backend got %d preflights, want none", n)
	}

	// Each request has its own reqvar: one origin never leaks into the
	// next request's response.
	for i := range 10 {
		o := fmt.Sprintf("https://app%d.example", i)
		resp, body := do(t, http.DefaultClient, "GET", r.url("/api/items"), nil, map[string]string{"Origin": o})
		if resp.StatusCode != 200 || body != "data" || resp.Header.Get("Access-Control-Allow-Origin") != o {
			t.Fatalf("GET with Origin %s: %d %q %v", o, resp.StatusCode, body, resp.Header)
		}
		resp, _ = do(t, http.DefaultClient, "GET", r.url("/api/items"), nil, nil)
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("GET without Origin got Access-Control-Allow-Origin %q", v)
		}
	}
	// An OPTIONS without Origin is not a preflight: it goes to the backend.
	if resp, _ := do(t, http.DefaultClient, "OPTIONS", r.url("/"), nil, nil); resp.StatusCode != 200 || preflights.Load() != 1 {
		t.Fatalf("plain OPTIONS: %d, backend preflights %d", resp.StatusCode, preflights.Load())
	}
}

// TestAviRateLimit: with a limiter of 5 a second per client address, the
// sixth request in a second gets 429; another address has its own
// allowance, and the allowance comes back with time.
func TestAviRateLimit(t *testing.T) {
	var hits atomic.Int64
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	// /probe tells the test that the script is in place without using
	// the allowance.
	r.attachScripts(t, spec.DataScriptSet{
		RateLimiters: []spec.RateLimiter{{Name: "per_ip", Count: 5, Period: 1}},
		DataScript: chunks(evtReq, `
if avi.http.get_path() == "/probe" then
  avi.http.response(200, {X_Limited = "yes"})
end
if avi.vs.ratelimit.exceed("per_ip", avi.vs.client_ip()) then
  avi.http.response(429)
end`),
	}, "")
	waitFor(t, "the script", 5*time.Second, func() bool {
		resp, _ := do(t, http.DefaultClient, "GET", r.url("/probe"), nil, nil)
		return resp.Header.Get("X-Limited") == "yes"
	})
	from := func(ip string) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	c1 := from("127.0.0.1")
	hits.Store(0)

	start := time.Now()
	var codes []int
	for range 6 {
		resp, _ := do(t, c1, "GET", r.url("/"), nil, nil)
		codes = append(codes, resp.StatusCode)
	}
	elapsed := time.Since(start)
	for i, c := range codes[:5] {
		if c != 200 {
			t.Fatalf("request %d: %d, want 200 (all: %v)", i+1, c, codes)
		}
	}
	// The bucket refills 5 tokens a second: the sixth finds less than one
	// unless the six took 200ms.
	if elapsed < 180*time.Millisecond && codes[5] != 429 {
		t.Fatalf("the sixth request in %v: %d, want 429", elapsed, codes[5])
	}
	resp, body := do(t, c1, "GET", r.url("/"), nil, nil)
	if resp.StatusCode != 429 {
		t.Fatalf("the seventh request: %d, want 429", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" || body != "" {
		t.Fatalf("429: Content-Type %q body %q", ct, body)
	}
	if n := hits.Load(); n > 6 {
		t.Fatalf("the backend got %d requests, want at most 6", n)
	}

	// Another client address has its own bucket.
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err == nil {
		l.Close()
		if resp, _ := do(t, from("127.0.0.2"), "GET", r.url("/"), nil, nil); resp.StatusCode != 200 {
			t.Fatalf("another client: %d, want 200", resp.StatusCode)
		}
	}

	// After a second the allowance is back.
	time.Sleep(1100 * time.Millisecond)
	if resp, _ := do(t, c1, "GET", r.url("/"), nil, nil); resp.StatusCode != 200 {
		t.Fatalf("a second later: %d, want 200", resp.StatusCode)
	}
}

// TestAviRequestBody: an HTTP_REQ_DATA script reads the JSON body and
// refuses one with a forbidden field; other bodies reach the backend
// intact.
func TestAviRequestBody(t *testing.T) {
	got := make(chan string, 10)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b)
		fmt.Fprintf(w, "stored %d", len(b))
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtReqData, `
local body = avi.http.get_req_body()
if body and string.find(body, '"is_admin"%s*:') then
  avi.http.response(403, {content_type = "application/json"}, '{"error": "forbidden field"}')
end`)}, "")
	post := func(body string) (int, string) {
		resp, b := do(t, http.DefaultClient, "POST", r.url("/users"), strings.NewReader(body),
			map[string]string{"Content-Type": "application/json"})
		return resp.StatusCode, b
	}
	waitFor(t, "the script", 5*time.Second, func() bool {
		code, _ := post(`{"is_admin": true}`)
		if code == 200 {
			<-got
		}
		return code == 403
	})

	code, body := post(`{"name": "eve", "role": "user", "is_admin" : true}`)
	if code != 403 || body != `{"error": "forbidden field"}` {
		t.Fatalf("forbidden body: %d %q", code, body)
	}
	select {
	case b := <-got:
		t.Fatalf("the backend got the refused body %q", b)
	default:
	}
	big := `{"name": "bob", "bio": "` + strings.Repeat("x", 20_000) + `", "tags": ["a", "b"]}`
	for _, ok := range []string{`{"name": "bob"}`, big, `{"admin_note": "is_admin is a word here"}`} {
		code, body := post(ok)
		if code != 200 || body != fmt.Sprintf("stored %d", len(ok)) {
			t.Fatalf("allowed body: %d %q", code, body)
		}
		if b := <-got; b != ok {
			t.Fatalf("the backend got %d bytes, want the %d sent intact", len(b), len(ok))
		}
	}
	// A chunked body is read whole for the script too: it cannot go round
	// the check.
	chunked := func(body string) (int, string) {
		pr, pw := io.Pipe()
		go func() {
			for i := 0; i < len(body); i += 7 {
				_, _ = pw.Write([]byte(body[i:min(i+7, len(body))]))
			}
			pw.Close()
		}()
		resp, b := do(t, http.DefaultClient, "POST", r.url("/users"), pr, map[string]string{"Content-Type": "application/json"})
		return resp.StatusCode, b
	}
	if code, body := chunked(`{"name": "eve", "is_admin": true}`); code != 403 {
		t.Fatalf("forbidden chunked body: %d %q", code, body)
	}
	if code, body := chunked(`{"name": "bob"}`); code != 200 || body != "stored 15" || <-got != `{"name": "bob"}` {
		t.Fatalf("allowed chunked body: %d %q", code, body)
	}
	// A body over the buffer (32Ki by default) is refused, not passed
	// unseen.
	if code, _ := chunked(strings.Repeat("y", 40_000)); code != 413 {
		t.Fatalf("chunked body over the buffer: %d, want 413", code)
	}
	if code, _ := post(strings.Repeat("y", 40_000)); code != 413 {
		t.Fatalf("body over the buffer: %d, want 413", code)
	}
	select {
	case b := <-got:
		t.Fatalf("the backend got a body the script did not see (%d bytes)", len(b))
	default:
	}
}

// TestAviResponseHeaderRewrite: the response script rewrites Server and
// removes X-Powered-By; other headers and the body pass.
func TestAviResponseHeaderRewrite(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "Apache/2.4.1 (Unix)")
		w.Header().Add("X-Powered-By", "PHP/5.6")
		w.Header().Add("X-Powered-By", "Express")
		w.Header().Set("X-Request", r.URL.Path)
		fmt.Fprint(w, "page")
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	r.attachScripts(t, spec.DataScriptSet{DataScript: chunks(evtResp, `
avi.http.replace_header("Server", "vigil")
avi.http.remove_header("X-Powered-By")`)}, "")
	waitFor(t, "the script", 5*time.Second, func() bool {
		resp, _ := do(t, http.DefaultClient, "GET", r.url("/"), nil, nil)
		return resp.Header.Get("Server") == "vigil"
	})
	for i := range 5 {
		path := fmt.Sprintf("/p%d", i)
		resp, body := do(t, http.DefaultClient, "GET", r.url(path), nil, nil)
		h := resp.Header
		if resp.StatusCode != 200 || body != "page" || len(h.Values("Server")) != 1 || h.Get("Server") != "vigil" ||
			h.Values("X-Powered-By") != nil || h.Get("X-Request") != path {
			t.Fatalf("%s: %d %q %v", path, resp.StatusCode, body, h)
		}
	}
}
