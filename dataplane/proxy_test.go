package dataplane

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/coder/websocket"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/spec"
)

// fakeStore is a config store in memory: Watch replays what it holds,
// then the changes put after.
type fakeStore struct {
	mu   sync.Mutex
	objs map[string]map[string]json.RawMessage
	fns  map[string][]func(config.Change)
}

func newFakeStore() *fakeStore {
	return &fakeStore{objs: map[string]map[string]json.RawMessage{}, fns: map[string][]func(config.Change){}}
}

func (f *fakeStore) Watch(_ context.Context, kind string, fn func(config.Change)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, s := range f.objs[kind] {
		fn(config.Change{Op: config.OpPut, Object: &config.Object{Kind: kind, Name: name, Spec: s}})
	}
	fn(config.Change{Op: config.OpSynced})
	f.fns[kind] = append(f.fns[kind], fn)
	return nil
}

func (f *fakeStore) put(kind, name, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs[kind] == nil {
		f.objs[kind] = map[string]json.RawMessage{}
	}
	f.objs[kind][name] = json.RawMessage(s)
	for _, fn := range f.fns[kind] {
		fn(config.Change{Op: config.OpPut, Object: &config.Object{Kind: kind, Name: name, Spec: json.RawMessage(s)}})
	}
}

func (f *fakeStore) delete(kind, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.objs[kind], name)
	for _, fn := range f.fns[kind] {
		fn(config.Change{Op: config.OpDelete, Object: &config.Object{Kind: kind, Name: name}})
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rig is a proxy on a fake store with one virtual service "vs" on pool
// "web".
type rig struct {
	store *fakeStore
	proxy *Proxy
}

func newRig(t *testing.T, poolSpec, vsExtra string) *rig {
	t.Helper()
	st := newFakeStore()
	st.put(spec.KindPool, "web", poolSpec)
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web"`+vsExtra+`}`)
	p := New(Options{Store: st})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	r := &rig{store: st, proxy: p}
	waitFor(t, "the virtual service to listen", 5*time.Second, func() bool { return p.Addr("vs") != "" })
	return r
}

func (r *rig) url(path string) string { return "http://" + r.proxy.Addr("vs") + path }

func poolOf(servers ...*httptest.Server) string {
	var s []string
	for _, srv := range servers {
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		s = append(s, fmt.Sprintf(`{"ip": %q, "port": %s}`, host, port))
	}
	return `{"servers": [` + strings.Join(s, ",") + `]}`
}

// countConns counts the connections a test server accepts.
func countConns(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func TestForwardsWithHeadersAndReusesConnections(t *testing.T) {
	var seen sync.Map
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store("xff", r.Header.Get("X-Forwarded-For"))
		seen.Store("xfp", r.Header.Get("X-Forwarded-Proto"))
		seen.Store("host", r.Host)
		seen.Store("hop", r.Header.Get("Keep-Alive")+r.Header.Get("Proxy-Connection"))
		w.Header().Set("X-Backend", "yes")
		fmt.Fprintf(w, "hello %s", r.URL.RequestURI())
	}))
	conns := countConns(backend)
	backend.Start()
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")

	c := &http.Client{}
	for i := range 20 {
		req, _ := http.NewRequest("GET", r.url(fmt.Sprintf("/p/%d?q=1", i)), nil)
		req.Host = "shop.example"
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		req.Header.Set("Proxy-Connection", "keep-alive")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != fmt.Sprintf("hello /p/%d?q=1", i) || resp.Header.Get("X-Backend") != "yes" {
			t.Fatalf("got %d %q %v", resp.StatusCode, body, resp.Header)
		}
	}
	if v, _ := seen.Load("xff"); v != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", v)
	}
	if v, _ := seen.Load("xfp"); v != "http" {
		t.Errorf("X-Forwarded-Proto = %q", v)
	}
	if v, _ := seen.Load("host"); v != "shop.example" {
		t.Errorf("Host = %q", v)
	}
	if v, _ := seen.Load("hop"); v != "" {
		t.Errorf("hop-by-hop headers forwarded: %q", v)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("backend saw %d connections for 20 sequential requests, want 1 kept alive", n)
	}
}

func TestStreamedResponseArrivesBeforeTheEnd(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "first\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "second\n")
	}))
	defer backend.Close()
	defer close(release)
	r := newRig(t, poolOf(backend), "")
	resp, err := http.Get(r.url("/stream"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	got := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		got <- line
	}()
	select {
	case line := <-got:
		if line != "first\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first chunk did not arrive while the backend held the rest")
	}
}

func TestRequestBodies(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %d %v %s", r.Method, len(b), r.TransferEncoding, b[:min(len(b), 10)])
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), `, "max_request_body": "1Mi"`)

	// Content-Length.
	resp, err := http.Post(r.url("/up"), "text/plain", strings.NewReader(strings.Repeat("a", 100_000)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST 100000 [] aaaaaaaaaa" {
		t.Fatalf("content-length body: %q", b)
	}
	// Chunked: the length is unknown to the client.
	pr, pw := io.Pipe()
	go func() {
		for range 10 {
			_, _ = pw.Write([]byte(strings.Repeat("b", 1000)))
		}
		pw.Close()
	}()
	resp, err = http.Post(r.url("/up"), "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST 10000 [chunked] bbbbbbbbbb" {
		t.Fatalf("chunked body: %q", b)
	}
	// Over max_request_body.
	resp, err = http.Post(r.url("/up"), "text/plain", strings.NewReader(strings.Repeat("a", 2<<20)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("2 MiB body: %d, want 413", resp.StatusCode)
	}
}

func TestWebSocketEchoes(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}))
	defer backend.Close()
	r := newRig(t, poolOf(backend), "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+r.proxy.Addr("vs")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for i := range 3 {
		msg := fmt.Sprintf("message %d", i)
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		_, got, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "echo: "+msg {
			t.Fatalf("got %q", got)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

func TestConfigChangeDuringALongRequest(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			fmt.Fprint(w, "start;")
			w.(http.Flusher).Flush()
			<-release
		}
		fmt.Fprint(w, "end")
	}))
	defer slow.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "other") }))
	defer other.Close()
	r := newRig(t, poolOf(slow), "")

	body := make(chan string, 1)
	go func() {
		resp, err := http.Get(r.url("/slow"))
		if err != nil {
			body <- err.Error()
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			body <- err.Error()
			return
		}
		body <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)
	// The pool now has only the other server; the VS changes too.
	r.store.put(spec.KindPool, "web", poolOf(other))
	r.store.put(spec.KindVirtualService, "vs", `{"listen": "`+r.proxy.Addr("vs")+`", "pool": "web", "access_log": false}`)
	waitFor(t, "the new pool", 5*time.Second, func() bool {
		resp, err := http.Get(r.url("/"))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b) == "other"
	})
	close(release)
	select {
	case b := <-body:
		if b != "start;end" {
			t.Fatalf("the request in flight got %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in flight did not end")
	}
}

// rawRequest sends raw bytes to addr and returns what comes back until the
// server closes or timeout.
func rawRequest(t *testing.T, addr, req string, timeout time.Duration) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

func statusOf(resp string) string {
	line, _, _ := strings.Cut(resp, "\r\n")
	return line
}

func TestMalformedRequests(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") }))
	defer backend.Close()
	r := newRig(t, poolOf(backend), `, "max_request_header": "4Ki", "timeouts": {"client_header": "300ms"}`)
	addr := r.proxy.Addr("vs")
	cases := []struct {
		name, req, want string
	}{
		{"garbage", "HELLO\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"bad version", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"space in name", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"folded", "GET / HTTP/1.1\r\nHost: x\r\n continued\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"both lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"two lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "HTTP/1.1 400 Bad Request"},
		{"bad length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"gzip coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501 Not Implemented"},
		{"huge head", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"slow head", "GET / HTTP/1.1\r\nHost: x\r\n", "HTTP/1.1 408 Request Timeout"},
		{"good", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "HTTP/1.1 200 OK"},
		{"http/1.0 without host", "GET / HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := statusOf(rawRequest(t, addr, c.req, 5*time.Second)); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestServerFailures(t *testing.T) {
	hang := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer hanging.Close()
	defer close(hang)
	r := newRig(t, poolOf(hanging)[:len(poolOf(hanging))-1]+`, "server_timeout": "300ms"}`, "")
	resp, err := http.Get(r.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 {
		t.Fatalf("hanging server: %d, want 504", resp.StatusCode)
	}

	// A server that refuses connections.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	r.store.put(spec.KindPool, "web", `{"servers": [{"ip": "127.0.0.1", "port": `+port+`}]}`)
	waitFor(t, "502 from a closed port", 5*time.Second, func() bool {
		resp, err := http.Get(r.url("/"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 502
	})
	// No servers at all.
	r.store.put(spec.KindPool, "web", `{"servers": []}`)
	waitFor(t, "503 from an empty pool", 5*time.Second, func() bool {
		resp, err := http.Get(r.url("/"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
}

// TestServerClosesKeptConnection: a server that closes its side after
// each response, while saying nothing, must not cost the next request.
func TestServerClosesKeptConnection(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				_ = req
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	host, port, _ := net.SplitHostPort(l.Addr().String())
	r := newRig(t, fmt.Sprintf(`{"servers": [{"ip": %q, "port": %s}]}`, host, port), "")
	for i := range 10 {
		resp, err := http.Get(r.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBalancing(t *testing.T) {
	var hits [3]atomic.Int64
	var servers []*httptest.Server
	for i := range 3 {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			fmt.Fprint(w, i)
		}))
		defer s.Close()
		servers = append(servers, s)
	}
	addr := func(s *httptest.Server) (string, string) {
		h, p, _ := net.SplitHostPort(s.Listener.Addr().String())
		return h, p
	}
	h0, p0 := addr(servers[0])
	h1, p1 := addr(servers[1])
	h2, p2 := addr(servers[2])
	pool := fmt.Sprintf(`{"servers": [{"ip": %q, "port": %s, "ratio": 2}, {"ip": %q, "port": %s}, {"ip": %q, "port": %s, "enabled": false}]}`, h0, p0, h1, p1, h2, p2)
	r := newRig(t, pool, "")
	get := func(path string) string {
		resp, err := http.Get(r.url(path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b)
	}
	for range 300 {
		get("/")
	}
	if a, b, c := hits[0].Load(), hits[1].Load(), hits[2].Load(); a != 200 || b != 100 || c != 0 {
		t.Fatalf("round robin with ratios 2:1 and one disabled: %d/%d/%d", a, b, c)
	}

	// Consistent hash on the URI: a URI always goes to one server.
	r.store.put(spec.KindPool, "web", pool[:len(pool)-1]+`, "lb_algorithm": "consistent_hash", "lb_algorithm_hash": "uri"}`)
	waitFor(t, "consistent hashing", 5*time.Second, func() bool {
		first := get("/key-1")
		for range 20 {
			if get("/key-1") != first {
				return false
			}
		}
		return true
	})
	spread := map[string]bool{}
	for i := range 50 {
		spread[get(fmt.Sprintf("/key-%d", i))] = true
	}
	if len(spread) != 2 {
		t.Fatalf("50 URIs went to %d servers, want the 2 enabled", len(spread))
	}
}

// TestStopDrains: Stop refuses new connections, closes the kept-alive
// ones that wait for a request at once, and lets a request in flight
// finish.
func TestStopDrains(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			fmt.Fprint(w, "start;")
			w.(http.Flusher).Flush()
			<-release
		}
		fmt.Fprint(w, "end")
	}))
	defer backend.Close()
	st := newFakeStore()
	st.put(spec.KindPool, "web", poolOf(backend))
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web"}`)
	p := New(Options{Store: st})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the virtual service", 5*time.Second, func() bool { return p.Addr("vs") != "" })
	addr := p.Addr("vs")

	// A kept-alive connection, idle after one request.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ibr := bufio.NewReader(idle)
	if _, err := io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(ibr, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	// A request in flight.
	body := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			body <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)

	stopped := make(chan struct{})
	go func() { p.Stop(); close(stopped) }()
	// The idle connection is closed at once.
	_ = idle.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := ibr.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("the idle connection was not closed: %v", err)
	}
	// New connections are refused.
	waitFor(t, "the listener to close", 3*time.Second, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-stopped:
		t.Fatal("Stop returned with a request in flight")
	default:
	}
	close(release)
	if b := <-body; b != "start;end" {
		t.Fatalf("the request in flight got %q", b)
	}
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not return after the last request")
	}
}
