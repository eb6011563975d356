package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// TestTCPDownAndUp: closing a server's port takes it down with
// CONNECTION_REFUSED and Avi's fields; listening again brings it up.
func TestTCPDownAndUp(t *testing.T) {
	pub := &fakePub{}
	reg := prometheus.NewRegistry()
	var changes atomic.Int64
	c := newChecker(t, Options{Publisher: pub, Registerer: reg, OnChange: func(pool string) {
		if pool == "web" {
			changes.Add(1)
		}
	}})
	srv := startTCP(t, "127.0.0.1:0")
	ip, port := hostPort(t, srv.addr)
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(50*time.Millisecond, 2, 2), []string{"shop"}, srv.addr)})
	st := c.ServerState("web", ip, port)

	waitFor(t, "three checks", func() bool { return srv.accepts.Load() >= 3 })
	if ids := pub.ids(); len(ids) != 0 {
		t.Fatalf("events while the server is up: %v", ids)
	}
	if !st.Up() || !c.Up("web", ip, port) {
		t.Fatal("server not up")
	}
	if up, total := c.Servers("web"); up != 1 || total != 1 {
		t.Fatalf("Servers = %d, %d", up, total)
	}

	srv.close()
	waitFor(t, "SERVER_DOWN, POOL_DOWN, VS_DOWN", func() bool { return pub.count(EventVSDown) == 1 })
	if ids := pub.ids(); !slices.Equal(ids, []string{EventServerDown, EventPoolDown, EventVSDown}) {
		t.Fatalf("events = %v", ids)
	}
	down := pub.last(t, EventServerDown)
	if down.Data.ObjType != "pool" || down.Data.ObjName != "web" || down.Data.Module != "SE_HM" || down.Subject != "pool/web" {
		t.Fatalf("record = %+v", down.Data)
	}
	d := detailsOf(t, down, "se_hm_pool_details")
	if d["pool"] != "web" || d["virtual_service"] != "shop" || d["percent_servers_up"] != 0.0 {
		t.Fatalf("se_hm_pool_details = %v", d)
	}
	s := serverOf(t, down)
	ipd, _ := s["ip"].(map[string]any)
	if ipd["addr"] != ip || ipd["type"] != "V4" || s["port"] != float64(port) || s["hostname"] != ip ||
		s["failure_code"] != FailureConnectionRefused {
		t.Fatalf("server = %v", s)
	}
	shm, _ := s["shm"].([]any)
	if len(shm) != 1 || shm[0].(map[string]any)["health_monitor"] != "hm-tcp" {
		t.Fatalf("shm = %v", s["shm"])
	}
	if !strings.Contains(down.Data.EventDescription, "is DOWN due to health monitor hm-tcp failure") {
		t.Fatalf("description = %q", down.Data.EventDescription)
	}
	vs := pub.last(t, EventVSDown)
	if vs.Data.ObjType != "virtualservice" || vs.Data.ObjName != "shop" || detailsOf(t, vs, "se_hm_vs_details")["virtual_service"] != "shop" {
		t.Fatalf("VS_DOWN = %+v", vs.Data)
	}
	for _, ev := range pub.all() {
		validates(t, ev)
	}
	if st.Up() || c.Up("web", ip, port) {
		t.Fatal("server still up")
	}
	if up, total := c.Servers("web"); up != 0 || total != 1 {
		t.Fatalf("Servers = %d, %d", up, total)
	}
	if v := gauge(t, reg, "vigil_server_up", "web", srv.addr); v != 0 {
		t.Fatalf("vigil_server_up = %v", v)
	}
	if n := counter(t, reg, "web", FailureConnectionRefused); n < 2 {
		t.Fatalf("checks refused = %v", n)
	}
	waitFor(t, "OnChange", func() bool { return changes.Load() == 1 })

	startTCP(t, srv.addr)
	waitFor(t, "SERVER_UP, POOL_UP, VS_UP", func() bool { return pub.count(EventVSUp) == 1 })
	if ids := pub.ids()[3:]; !slices.Equal(ids, []string{EventServerUp, EventPoolUp, EventVSUp}) {
		t.Fatalf("events = %v", ids)
	}
	up := pub.last(t, EventServerUp)
	if percentOf(t, up) != 100 || serverOf(t, up)["failure_code"] != nil {
		t.Fatalf("SERVER_UP details = %v", detailsOf(t, up, "se_hm_pool_details"))
	}
	if !st.Up() || c.ServerState("web", ip, port) != st {
		t.Fatal("state not up, or not the same")
	}
	if v := gauge(t, reg, "vigil_server_up", "web", srv.addr); v != 1 {
		t.Fatalf("vigil_server_up = %v", v)
	}
	if n := counter(t, reg, "web", ResultSuccess); n < 5 {
		t.Fatalf("checks succeeded = %v", n)
	}
}

// script answers an http monitor: queued statuses first, then the
// default; it records the requests.
type script struct {
	mu     sync.Mutex
	queue  []int
	def    int
	body   string
	hang   bool
	reqs   []*http.Request
	hits   atomic.Int64
	closed chan struct{}
}

func newScript(t testing.TB) (*script, *httptest.Server) {
	s := &script{def: 200, body: "hello, world", closed: make(chan struct{})}
	srv := httptest.NewServer(s)
	t.Cleanup(func() {
		close(s.closed)
		srv.Close()
	})
	return s, srv
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status := s.def
	if len(s.queue) > 0 {
		status, s.queue = s.queue[0], s.queue[1:]
	}
	body, hang := s.body, s.hang
	s.reqs = append(s.reqs, r)
	s.mu.Unlock()
	s.hits.Add(1)
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func (s *script) set(f func(s *script)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *script) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func (s *script) lastRequest() *http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[len(s.reqs)-1]
}

// TestHTTPFailureCodes: a bad status, a body without the expected text
// and a server that does not answer each take the server down with their
// code; the request is the monitor's.
func TestHTTPFailureCodes(t *testing.T) {
	pub := &fakePub{}
	c := newChecker(t, Options{Publisher: pub})
	sc, srv := newScript(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	m := httpMonitor(100*time.Millisecond, 1, 1, spec.HTTPCheck{
		Method: "GET", Path: "/healthz?deep=1", Host: "app.example", ExpectedCodes: []string{"2xx"}, BodyContains: "hello",
	})
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", m, nil, addr)})
	waitFor(t, "two checks", func() bool { return sc.hits.Load() >= 2 })
	r := sc.lastRequest()
	if r.Method != "GET" || r.URL.RequestURI() != "/healthz?deep=1" || r.Host != "app.example" ||
		r.UserAgent() != UserAgent || !r.Close || r.Proto != "HTTP/1.1" {
		t.Fatalf("request = %s %s %s host %q agent %q close %v", r.Method, r.URL, r.Proto, r.Host, r.UserAgent(), r.Close)
	}
	if ids := pub.ids(); len(ids) != 0 {
		t.Fatalf("events = %v", ids)
	}

	downs := 0
	expectDown := func(code string, status int, resp string) {
		t.Helper()
		downs++
		waitFor(t, code, func() bool { return pub.count(EventServerDown) == downs })
		s := serverOf(t, pub.last(t, EventServerDown))
		shm := s["shm"].([]any)[0].(map[string]any)
		if s["failure_code"] != code || shm["health_monitor"] != "hm-http" {
			t.Fatalf("server = %v", s)
		}
		if got, _ := shm["response_code"].(float64); int(got) != status {
			t.Fatalf("response_code = %v, want %d", shm["response_code"], status)
		}
		if got, _ := shm["resp_string"].(string); resp != "" && got != resp {
			t.Fatalf("resp_string = %q, want %q", got, resp)
		}
	}
	expectUp := func() {
		t.Helper()
		sc.set(func(s *script) { s.def, s.body, s.hang = 200, "hello, world", false })
		waitFor(t, "SERVER_UP", func() bool { return pub.count(EventServerUp) == downs })
	}

	sc.set(func(s *script) { s.def = 500 })
	expectDown(FailureResponseCodeMismatch, 500, "HTTP/1.1 500 Internal Server Error")
	expectUp()

	sc.set(func(s *script) { s.body = "maintenance" })
	expectDown(FailurePayloadContentMismatch, 200, "maintenance")
	expectUp()

	sc.set(func(s *script) { s.hang = true })
	expectDown(FailurePayloadTimeout, 0, "")
	expectUp()
	for _, ev := range pub.all() {
		validates(t, ev)
	}
}

// TestExpectedCodes: classes, codes and HTTP_ANY as spec.CodeRange reads
// them.
func TestExpectedCodes(t *testing.T) {
	for _, tc := range []struct {
		codes  []string
		status int
		want   bool
	}{
		{nil, 200, true},
		{nil, 302, true},
		{nil, 404, false},
		{[]string{"2xx"}, 204, true},
		{[]string{"2xx"}, 301, false},
		{[]string{"HTTP_2XX", "HTTP_3XX"}, 301, true},
		{[]string{"200"}, 200, true},
		{[]string{"200"}, 201, false},
		{[]string{"200", "404"}, 404, true},
		{[]string{"HTTP_ANY"}, 503, true},
		{[]string{"any"}, 100, true},
	} {
		m := newMonitor("m", httpMonitor(time.Second, 1, 1, spec.HTTPCheck{ExpectedCodes: tc.codes}))
		if m.bad != nil {
			t.Fatal(m.bad)
		}
		if got := m.expects(tc.status); got != tc.want {
			t.Errorf("%v expects %d = %v, want %v", tc.codes, tc.status, got, tc.want)
		}
	}
	if m := newMonitor("m", httpMonitor(time.Second, 1, 1, spec.HTTPCheck{ExpectedCodes: []string{"2x"}})); m.bad == nil {
		t.Error("bad code accepted")
	}
}

// TestExpectedCodesLive: HTTP_ANY keeps a server answering 503 up; an
// exact code takes down a server answering another.
func TestExpectedCodesLive(t *testing.T) {
	pub := &fakePub{}
	c := newChecker(t, Options{Publisher: pub})
	anySc, anySrv := newScript(t)
	anySc.set(func(s *script) { s.def = 503 })
	exactSc, exactSrv := newScript(t)
	c.Set(map[string]PoolConfig{
		"any": poolConfig(t, "any", httpMonitor(50*time.Millisecond, 1, 1, spec.HTTPCheck{ExpectedCodes: []string{"HTTP_ANY"}}), nil,
			strings.TrimPrefix(anySrv.URL, "http://")),
		"exact": poolConfig(t, "exact", httpMonitor(50*time.Millisecond, 1, 1, spec.HTTPCheck{ExpectedCodes: []string{"204"}}), nil,
			strings.TrimPrefix(exactSrv.URL, "http://")),
	})
	waitFor(t, "SERVER_DOWN of exact", func() bool { return pub.count(EventServerDown) == 1 })
	hits := anySc.hits.Load()
	waitFor(t, "more checks of any", func() bool { return anySc.hits.Load() >= hits+3 })
	if ev := pub.last(t, EventServerDown); ev.Data.ObjName != "exact" || serverOf(t, ev)["failure_code"] != FailureResponseCodeMismatch {
		t.Fatalf("SERVER_DOWN of %s: %v", ev.Data.ObjName, serverOf(t, ev))
	}
	if n := pub.count(EventServerDown); n != 1 {
		t.Fatalf("%d SERVER_DOWN", n)
	}
	ip, port := hostPort(t, strings.TrimPrefix(anySrv.URL, "http://"))
	if exactSc.hits.Load() == 0 || !c.Up("any", ip, port) {
		t.Fatal("pool any not up")
	}
}

// TestPoolAndVSEvents: two servers going down give two SERVER_DOWN, one
// POOL_DOWN and a VS_DOWN per virtual service; one coming back gives
// SERVER_UP, POOL_UP and VS_UP.
func TestPoolAndVSEvents(t *testing.T) {
	pub := &fakePub{}
	c := newChecker(t, Options{Publisher: pub})
	a, b := startTCP(t, "127.0.0.1:0"), startTCP(t, "127.0.0.1:0")
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(50*time.Millisecond, 2, 2), []string{"shop", "store"}, a.addr, b.addr)})
	waitFor(t, "checks of both", func() bool { return a.accepts.Load() >= 2 && b.accepts.Load() >= 2 })

	a.close()
	waitFor(t, "first SERVER_DOWN", func() bool { return pub.count(EventServerDown) == 1 })
	if p := percentOf(t, pub.last(t, EventServerDown)); p != 50 {
		t.Fatalf("percent_servers_up = %v, want 50", p)
	}
	if up, total := c.Servers("web"); up != 1 || total != 2 {
		t.Fatalf("Servers = %d, %d", up, total)
	}
	b.close()
	waitFor(t, "VS_DOWN of both", func() bool { return pub.count(EventVSDown) == 2 })
	want := []string{EventServerDown, EventServerDown, EventPoolDown, EventVSDown, EventVSDown}
	if ids := pub.ids(); !slices.Equal(ids, want) {
		t.Fatalf("events = %v, want %v", ids, want)
	}
	evs := pub.all()
	if p := percentOf(t, evs[1]); p != 0 {
		t.Fatalf("percent_servers_up = %v, want 0", p)
	}
	if evs[3].Data.ObjName != "shop" || evs[4].Data.ObjName != "store" {
		t.Fatalf("VS_DOWN for %s, %s", evs[3].Data.ObjName, evs[4].Data.ObjName)
	}
	if r := detailsOf(t, evs[3], "se_hm_vs_details")["reason"]; r != "Pool web is DOWN" {
		t.Fatalf("reason = %v", r)
	}

	startTCP(t, b.addr)
	waitFor(t, "VS_UP of both", func() bool { return pub.count(EventVSUp) == 2 })
	want = append(want, EventServerUp, EventPoolUp, EventVSUp, EventVSUp)
	if ids := pub.ids(); !slices.Equal(ids, want) {
		t.Fatalf("events = %v, want %v", ids, want)
	}
	up := pub.last(t, EventServerUp)
	_, bport := hostPort(t, b.addr)
	if p := percentOf(t, up); p != 50 || serverOf(t, up)["port"] != float64(bport) {
		t.Fatalf("SERVER_UP details = %v", detailsOf(t, up, "se_hm_pool_details"))
	}
	if p := percentOf(t, pub.last(t, EventPoolUp)); p != 50 {
		t.Fatalf("POOL_UP percent_servers_up = %v", p)
	}
	for _, ev := range pub.all() {
		validates(t, ev)
	}
}

// TestSetKeepsState: an unrelated change keeps a down server down without
// an event; a changed monitor restarts its checks from the server's
// state; a removed server is no longer checked.
func TestSetKeepsState(t *testing.T) {
	pub := &fakePub{}
	reg := prometheus.NewRegistry()
	c := newChecker(t, Options{Publisher: pub, Registerer: reg})
	a := startTCP(t, "127.0.0.1:0")
	bAddr := freeAddr(t)
	m := tcpMonitor(50*time.Millisecond, 2, 2)
	cfg := poolConfig(t, "web", m, []string{"shop"}, a.addr, bAddr)
	c.Set(map[string]PoolConfig{"web": cfg})
	waitFor(t, "SERVER_DOWN of b", func() bool { return pub.count(EventServerDown) == 1 })
	bip, bport := hostPort(t, bAddr)
	aip, aport := hostPort(t, a.addr)
	bState, aState := c.ServerState("web", bip, bport), c.ServerState("web", aip, aport)
	if bState.Up() || !aState.Up() {
		t.Fatal("wrong states")
	}

	// Unrelated: a's ratio, the algorithm, the virtual services, a new
	// pool without monitors.
	cfg2 := poolConfig(t, "web", m, []string{"shop", "store"}, a.addr, bAddr)
	cfg2.Pool.Servers[0].Ratio = 5
	cfg2.Pool.LBAlgorithm = spec.LBLeastConnections
	c.Set(map[string]PoolConfig{"web": cfg2, "api": poolConfig(t, "api", nil, nil, "127.0.0.1:9")})
	refused := counter(t, reg, "web", FailureConnectionRefused)
	accepts := a.accepts.Load()
	waitFor(t, "more checks of both", func() bool {
		return counter(t, reg, "web", FailureConnectionRefused) >= refused+3 && a.accepts.Load() >= accepts+3
	})
	if ids := pub.ids(); !slices.Equal(ids, []string{EventServerDown}) {
		t.Fatalf("events = %v", ids)
	}
	if c.ServerState("web", bip, bport) != bState || bState.Up() || !aState.Up() {
		t.Fatal("state lost")
	}
	if up, total := c.Servers("web"); up != 1 || total != 2 {
		t.Fatalf("Servers(web) = %d, %d", up, total)
	}
	if up, total := c.Servers("api"); up != 1 || total != 1 || !c.Up("api", "127.0.0.1", 9) {
		t.Fatalf("Servers(api) = %d, %d", up, total)
	}

	// A changed monitor: checks restart, b stays down, and comes up
	// through the new monitor's successful checks.
	m2 := tcpMonitor(40*time.Millisecond, 3, 2)
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", m2, []string{"shop"}, a.addr, bAddr)})
	if bState.Up() || len(pub.ids()) != 1 {
		t.Fatalf("monitor change: up %v, events %v", bState.Up(), pub.ids())
	}
	b := startTCP(t, bAddr)
	waitFor(t, "SERVER_UP of b", func() bool { return pub.count(EventServerUp) == 1 })
	if b.accepts.Load() < 3 {
		t.Fatalf("b up after %d checks, want 3", b.accepts.Load())
	}
	if ids := pub.ids(); !slices.Equal(ids, []string{EventServerDown, EventServerUp}) {
		t.Fatalf("events = %v", ids)
	}

	// A removed server: no more checks, no event, a new state.
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", m2, []string{"shop"}, bAddr)})
	accepts = a.accepts.Load()
	bAccepts := b.accepts.Load()
	waitFor(t, "more checks of b", func() bool { return b.accepts.Load() >= bAccepts+5 })
	if n := a.accepts.Load(); n > accepts+2 { // a check under way, one not yet accepted
		t.Fatalf("a checked %d times after its removal", n-accepts)
	}
	if c.ServerState("web", aip, aport) == aState {
		t.Fatal("removed server kept its state")
	}
	if up, total := c.Servers("web"); up != 1 || total != 1 {
		t.Fatalf("Servers(web) = %d, %d", up, total)
	}

	// Removing the pools: no events, nothing known.
	c.Set(nil)
	if up, total := c.Servers("web"); up != 0 || total != 0 {
		t.Fatalf("Servers(web) = %d, %d", up, total)
	}
	if ids := pub.ids(); len(ids) != 2 {
		t.Fatalf("events = %v", ids)
	}
	if n := testutilCount(t, reg, "vigil_server_up"); n != 0 {
		t.Fatalf("%d vigil_server_up series left", n)
	}
}

// TestCheckCounts: failed_checks and successful_checks in a row.
func TestCheckCounts(t *testing.T) {
	pub := &fakePub{}
	c := newChecker(t, Options{Publisher: pub})
	sc, srv := newScript(t)
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", httpMonitor(30*time.Millisecond, 3, 3, spec.HTTPCheck{}), nil,
		strings.TrimPrefix(srv.URL, "http://"))})
	// play queues statuses and waits for them and n more checks.
	play := func(n int64, statuses ...int) {
		t.Helper()
		sc.set(func(s *script) { s.queue = append(s.queue, statuses...) })
		waitFor(t, "the statuses played", func() bool { return sc.pending() == 0 })
		hits := sc.hits.Load()
		waitFor(t, "more checks", func() bool { return sc.hits.Load() >= hits+n })
	}
	play(3, 500)
	play(3, 500, 500)
	if ids := pub.ids(); len(ids) != 0 {
		t.Fatalf("events after fewer than 3 failures in a row: %v", ids)
	}
	sc.set(func(s *script) { s.queue = append(s.queue, 500, 500, 500) })
	waitFor(t, "SERVER_DOWN", func() bool { return pub.count(EventServerDown) == 1 })

	sc.set(func(s *script) { s.def = 500 })
	play(2, 200, 200)
	if ids := pub.ids(); !slices.Equal(ids, []string{EventServerDown, EventPoolDown}) {
		t.Fatalf("events after fewer than 3 passes in a row: %v", ids)
	}
	sc.set(func(s *script) { s.def = 200 })
	waitFor(t, "SERVER_UP", func() bool { return pub.count(EventServerUp) == 1 })
}

// TestDisabledServer: a disabled server is not checked, not up, and not
// counted.
func TestDisabledServer(t *testing.T) {
	pub := &fakePub{}
	c := newChecker(t, Options{Publisher: pub})
	a := startTCP(t, "127.0.0.1:0")
	off := startTCP(t, "127.0.0.1:0")
	cfg := poolConfig(t, "web", tcpMonitor(30*time.Millisecond, 2, 2), nil, a.addr, off.addr)
	no := false
	cfg.Pool.Servers[1].Enabled = &no
	c.Set(map[string]PoolConfig{"web": cfg})
	waitFor(t, "checks of a", func() bool { return a.accepts.Load() >= 5 })
	if n := off.accepts.Load(); n != 0 {
		t.Fatalf("disabled server checked %d times", n)
	}
	ip, port := hostPort(t, off.addr)
	if c.Up("web", ip, port) {
		t.Fatal("disabled server up")
	}
	if up, total := c.Servers("web"); up != 1 || total != 1 {
		t.Fatalf("Servers = %d, %d", up, total)
	}
	// Enabled again: up at once, checked, no event.
	cfg.Pool.Servers[1].Enabled = nil
	c.Set(map[string]PoolConfig{"web": cfg})
	if !c.Up("web", ip, port) {
		t.Fatal("enabled server not up")
	}
	waitFor(t, "checks of the enabled server", func() bool { return off.accepts.Load() >= 2 })
	if ids := pub.ids(); len(ids) != 0 {
		t.Fatalf("events = %v", ids)
	}
}

// TestNoMonitors: without monitors servers are up and nothing is checked.
func TestNoMonitors(t *testing.T) {
	c := newChecker(t, Options{})
	a := startTCP(t, "127.0.0.1:0")
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", nil, nil, a.addr)})
	ip, port := hostPort(t, a.addr)
	if !c.Up("web", ip, port) || !c.ServerState("web", ip, port).Up() {
		t.Fatal("server not up")
	}
	if up, total := c.Servers("web"); up != 1 || total != 1 {
		t.Fatalf("Servers = %d, %d", up, total)
	}
	if !c.Up("nope", "10.0.0.1", 80) {
		t.Fatal("unknown server not up")
	}
	var nilState *ServerState
	if !nilState.Up() {
		t.Fatal("nil state not up")
	}
}

// TestServerStateBeforeSet: a state asked for before Set names the server
// is the one Set then uses.
func TestServerStateBeforeSet(t *testing.T) {
	pub := &fakePub{}
	c := newChecker(t, Options{Publisher: pub})
	addr := freeAddr(t)
	ip, port := hostPort(t, addr)
	st := c.ServerState("web", ip, port)
	if !st.Up() {
		t.Fatal("unknown server not up")
	}
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(30*time.Millisecond, 1, 1), nil, addr)})
	if c.ServerState("web", ip, port) != st {
		t.Fatal("Set did not adopt the state")
	}
	waitFor(t, "SERVER_DOWN", func() bool { return pub.count(EventServerDown) == 1 })
	if st.Up() {
		t.Fatal("state still up")
	}
}

// TestSlowPublisher: a publisher that never answers holds up neither the
// checks nor Stop.
func TestSlowPublisher(t *testing.T) {
	var calls atomic.Int64
	var changes atomic.Int64
	pub := PublisherFunc(func(ctx context.Context, ev *events.Event) error {
		calls.Add(1)
		<-ctx.Done()
		return fmt.Errorf("publish %s: %w", ev.Data.EventID, ctx.Err())
	})
	c := New(Options{Publisher: pub, PublishTimeout: 100 * time.Millisecond, OnChange: func(string) { changes.Add(1) }})
	c.Start(context.Background())
	sc, srv := newScript(t)
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", httpMonitor(20*time.Millisecond, 1, 1, spec.HTTPCheck{}), nil,
		strings.TrimPrefix(srv.URL, "http://"))})
	for i := range 3 {
		sc.set(func(s *script) { s.def = 500 })
		waitFor(t, "down", func() bool { return changes.Load() == int64(2*i+1) })
		sc.set(func(s *script) { s.def = 200 })
		waitFor(t, "up", func() bool { return changes.Load() == int64(2*i+2) })
	}
	start := time.Now()
	c.Stop()
	c.Stop()
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if calls.Load() == 0 {
		t.Fatal("nothing published")
	}
}

// TestStopWithoutStart: Stop before Start, and Set after Stop, start
// nothing.
func TestStopWithoutStart(t *testing.T) {
	c := New(Options{})
	a := startTCP(t, "127.0.0.1:0")
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(10*time.Millisecond, 1, 1), nil, a.addr)})
	c.Stop()
	c.Start(context.Background())
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(20*time.Millisecond, 1, 1), nil, a.addr)})
	c.Stop()
	if n := a.accepts.Load(); n != 0 {
		t.Fatalf("%d checks", n)
	}
}

// TestStartCancelled: cancelling Start's context ends the checks.
func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c := New(Options{})
	a := startTCP(t, "127.0.0.1:0")
	c.Set(map[string]PoolConfig{"web": poolConfig(t, "web", tcpMonitor(10*time.Millisecond, 1, 1), nil, a.addr)})
	c.Start(ctx)
	waitFor(t, "checks", func() bool { return a.accepts.Load() >= 2 })
	cancel()
	done := make(chan struct{})
	go func() { c.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("Stop did not return")
	}
}

// TestClassify: errors of dials and reads map to Avi's failure codes.
func TestClassify(t *testing.T) {
	c := New(Options{})
	m := newMonitor("m", tcpMonitor(time.Second, 1, 1))
	if r := check(context.Background(), c.dial, m, freeAddr(t), ""); r.code != FailureConnectionRefused {
		t.Fatalf("closed port: %q (%v)", r.code, r.err)
	}
	timeout := &timeoutErr{}
	for _, tc := range []struct {
		err       error
		connected bool
		want      string
	}{
		{timeout, false, FailureConnectionTimeout},
		{timeout, true, FailurePayloadTimeout},
		{context.DeadlineExceeded, false, FailureConnectionTimeout},
		{errors.New("boom"), false, FailureConnectionError},
	} {
		if got := classify(tc.err, tc.connected); got != tc.want {
			t.Errorf("classify(%v, %v) = %s, want %s", tc.err, tc.connected, got, tc.want)
		}
	}
	if a := newIPAddr("::1"); a.Type != "V6" {
		t.Errorf("::1 is %s", a.Type)
	}
	if a := newIPAddr("10.0.0.5"); a.Type != "V4" {
		t.Errorf("10.0.0.5 is %s", a.Type)
	}
	if p := percent(1, 3); p != 33 {
		t.Errorf("percent(1, 3) = %d", p)
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

// TestNotHTTP: an answer that is not HTTP, and a connection closed without
// one, have their codes.
func TestNotHTTP(t *testing.T) {
	for _, tc := range []struct {
		answer string
		want   string
	}{
		{"SSH-2.0-OpenSSH_9.6\r\n", FailureOtherError},
		{"", FailureNoResponse},
	} {
		ln := startRaw(t, tc.answer)
		m := newMonitor("m", httpMonitor(time.Second, 1, 1, spec.HTTPCheck{}))
		if r := check(context.Background(), New(Options{}).dial, m, ln, "x"); r.code != tc.want {
			t.Errorf("answer %q: %s (%v), want %s", tc.answer, r.code, r.err, tc.want)
		}
	}
}

// startRaw answers every connection with answer after reading the request
// head, then closes it.
func startRaw(t testing.TB, answer string) string {
	t.Helper()
	s := startTCPFunc(t, "127.0.0.1:0", func(conn net.Conn) {
		buf := make([]byte, 4096)
		_, _ = conn.Read(buf)
		_, _ = io.WriteString(conn, answer)
	})
	return s.addr
}

// gauge returns the value of a gauge series, failing when it is missing.
func gauge(t testing.TB, reg *prometheus.Registry, name, pool, server string) float64 {
	t.Helper()
	for _, m := range find(t, reg, name) {
		if label(m, "pool") == pool && label(m, "server") == server {
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{pool=%q,server=%q}", name, pool, server)
	return 0
}

// counter returns vigil_health_checks_total{pool, result}, 0 when missing.
func counter(t testing.TB, reg *prometheus.Registry, pool, result string) float64 {
	t.Helper()
	for _, m := range find(t, reg, "vigil_health_checks_total") {
		if label(m, "pool") == pool && label(m, "result") == result {
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func testutilCount(t testing.TB, reg *prometheus.Registry, name string) int {
	t.Helper()
	return len(find(t, reg, name))
}

func find(t testing.TB, reg *prometheus.Registry, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
