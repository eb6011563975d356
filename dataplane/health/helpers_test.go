package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/config"
	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// waitTimeout bounds every wait of the tests: far above what a check on
// loopback takes, even under the race detector.
const waitTimeout = 10 * time.Second

// waitFor polls cond until it holds or waitTimeout passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fakePub records the events published.
type fakePub struct {
	mu  sync.Mutex
	evs []*events.Event
}

func (f *fakePub) Publish(_ context.Context, ev *events.Event) (events.PublishResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evs = append(f.evs, ev)
	return events.PublishResult{Seq: uint64(len(f.evs))}, nil
}

func (f *fakePub) all() []*events.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*events.Event(nil), f.evs...)
}

func (f *fakePub) ids() []string {
	var out []string
	for _, ev := range f.all() {
		out = append(out, ev.Data.EventID)
	}
	return out
}

func (f *fakePub) count(id string) int {
	n := 0
	for _, ev := range f.all() {
		if ev.Data.EventID == id {
			n++
		}
	}
	return n
}

// last returns the last event with id, or fails the test.
func (f *fakePub) last(t testing.TB, id string) *events.Event {
	t.Helper()
	evs := f.all()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Data.EventID == id {
			return evs[i]
		}
	}
	t.Fatalf("no %s event in %v", id, f.ids())
	return nil
}

// newChecker starts a Checker stopped at the end of the test.
func newChecker(t testing.TB, opts Options) *Checker {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	c := New(opts)
	c.Start(context.Background())
	t.Cleanup(c.Stop)
	return c
}

// tcpServer is a listener that accepts and closes connections, counting
// them.
type tcpServer struct {
	addr    string
	ln      net.Listener
	accepts atomic.Int64
	done    chan struct{}
}

// startTCP listens on addr ("127.0.0.1:0" for a free port).
func startTCP(t testing.TB, addr string) *tcpServer {
	t.Helper()
	return startTCPFunc(t, addr, nil)
}

// startTCPFunc is startTCP with handle, when not nil, serving each
// connection before it is closed.
func startTCPFunc(t testing.TB, addr string, handle func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{addr: ln.Addr().String(), ln: ln, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			if handle != nil {
				handle(c)
			}
			_ = c.Close()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) close() {
	_ = s.ln.Close()
	<-s.done
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func hostPort(t testing.TB, addr string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return h, n
}

func tcpMonitor(every time.Duration, rise, fall int) *spec.HealthMonitor {
	return &spec.HealthMonitor{
		Type: spec.MonitorTCP, Interval: config.Duration(every), Timeout: config.Duration(every),
		SuccessfulChecks: rise, FailedChecks: fall,
	}
}

func httpMonitor(every time.Duration, rise, fall int, hc spec.HTTPCheck) *spec.HealthMonitor {
	return &spec.HealthMonitor{
		Type: spec.MonitorHTTP, Interval: config.Duration(every), Timeout: config.Duration(every),
		SuccessfulChecks: rise, FailedChecks: fall, HTTP: &hc,
	}
}

// poolConfig makes a pool of the servers at addrs with one monitor.
func poolConfig(t testing.TB, name string, m *spec.HealthMonitor, vses []string, addrs ...string) PoolConfig {
	t.Helper()
	p := &spec.Pool{}
	for _, a := range addrs {
		ip, port := hostPort(t, a)
		p.Servers = append(p.Servers, spec.Server{IP: ip, Port: port})
	}
	pc := PoolConfig{Name: name, Pool: p, VirtualServices: vses}
	if m != nil {
		p.HealthMonitors = []string{"hm-" + m.Kind()}
		pc.Monitors = []*spec.HealthMonitor{m}
	}
	return pc
}

// detailsOf decodes ev's event_details under key as generic JSON, to
// check the names on the wire.
func detailsOf(t testing.TB, ev *events.Event, key string) map[string]any {
	t.Helper()
	raw, ok := ev.Data.EventDetails[key]
	if !ok {
		t.Fatalf("%s: no %s in event_details %v", ev.Data.EventID, key, ev.Data.EventDetails)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// serverOf returns se_hm_pool_details.server of ev.
func serverOf(t testing.TB, ev *events.Event) map[string]any {
	t.Helper()
	s, ok := detailsOf(t, ev, "se_hm_pool_details")["server"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no server in se_hm_pool_details", ev.Data.EventID)
	}
	return s
}

func percentOf(t testing.TB, ev *events.Event) float64 {
	t.Helper()
	p, ok := detailsOf(t, ev, "se_hm_pool_details")["percent_servers_up"].(float64)
	if !ok {
		t.Fatalf("%s: percent_servers_up missing or not a number", ev.Data.EventID)
	}
	return p
}

// validates checks that ev survives its JSON form and events.Decode.
func validates(t testing.TB, ev *events.Event) {
	t.Helper()
	b, err := ev.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Decode(b, "/test", time.Now())
	if err != nil {
		t.Fatalf("%s does not validate: %v\n%s", ev.Data.EventID, err, b)
	}
	if got.ID != ev.ID || got.Subject != ev.Data.ObjType+"/"+ev.Data.ObjName {
		t.Fatalf("decoded %+v", got)
	}
}
