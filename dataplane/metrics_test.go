package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/dataplane/spec"
	"github.com/vigilhq/vigil/events"
)

// recorder is a publisher that keeps the events it is given.
type recorder struct {
	mu  sync.Mutex
	evs []*events.Event
}

func (r *recorder) Publish(_ context.Context, ev *events.Event) (events.PublishResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return events.PublishResult{}, nil
}

func (r *recorder) find(id string) []*events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*events.Event
	for _, ev := range r.evs {
		if ev.Type == id {
			out = append(out, ev)
		}
	}
	return out
}

func TestPoolMetricsAndPrometheus(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer backend.Close()
	st := newFakeStore()
	pool := poolOf(backend)
	st.put(spec.KindPool, "web", pool[:len(pool)-1]+`, "metrics_interval": "300ms"}`)
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web"}`)
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	p := New(Options{Store: st, Events: rec, Registerer: reg})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	waitFor(t, "the virtual service", 5*time.Second, func() bool { return p.Addr("vs") != "" })
	base := "http://" + p.Addr("vs")
	stopLoad := load(base + "/")
	resp, err := http.Get(base + "/missing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var details map[string]any
	waitFor(t, "POOL_METRICS with traffic", 10*time.Second, func() bool {
		for _, ev := range rec.find("POOL_METRICS") {
			var d map[string]any
			if err := json.Unmarshal(ev.Data.EventDetails["pool_metrics_details"], &d); err != nil {
				t.Fatal(err)
			}
			if rps, _ := d["requests_per_sec"].(float64); rps > 0 {
				details = d
				return true
			}
		}
		return false
	})
	stopLoad()
	if details["pool"] != "web" || details["servers_up"] != 1.0 || details["servers_total"] != 1.0 {
		t.Fatalf("POOL_METRICS details: %v", details)
	}
	if p95, _ := details["p95_latency_ms"].(float64); p95 <= 0 {
		t.Fatalf("p95_latency_ms %v", details["p95_latency_ms"])
	}
	servers, _ := details["servers"].([]any)
	if len(servers) != 1 || servers[0].(map[string]any)["up"] != true {
		t.Fatalf("servers: %v", servers)
	}

	if n := testutil.CollectAndCount(reg, "vigil_vs_requests_total"); n != 5 {
		t.Fatalf("vigil_vs_requests_total has %d series, want one per class", n)
	}
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found4xx, foundServer bool
	for _, mf := range got {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "vigil_vs_requests_total":
				if labels["code"] == "4xx" && m.GetCounter().GetValue() == 1 {
					found4xx = true
				}
			case "vigil_server_requests_total":
				if strings.HasPrefix(labels["server"], "127.0.0.1:") && m.GetCounter().GetValue() > 1 {
					foundServer = true
				}
			}
		}
	}
	if !found4xx || !foundServer {
		t.Fatalf("metrics: 4xx counted %v, server requests counted %v", found4xx, foundServer)
	}
}

// TestPoolMetricsThroughPoolChanges: under steady load, a server leaving
// the pool and another joining leave requests_per_sec above zero in every
// interval: each server counts from its own last reading.
func TestPoolMetricsThroughPoolChanges(t *testing.T) {
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }
	a := httptest.NewServer(http.HandlerFunc(ok))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(ok))
	defer b.Close()
	st := newFakeStore()
	withInterval := func(pool string) string { return pool[:len(pool)-1] + `, "metrics_interval": "200ms"}` }
	st.put(spec.KindPool, "web", withInterval(poolOf(a, b)))
	st.put(spec.KindVirtualService, "vs", `{"listen": "127.0.0.1:0", "pool": "web"}`)
	rec := &recorder{}
	p := New(Options{Store: st, Events: rec})
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	waitFor(t, "the virtual service", 5*time.Second, func() bool { return p.Addr("vs") != "" })
	defer load("http://" + p.Addr("vs") + "/")()
	rps := func(from int) []float64 {
		var out []float64
		for _, ev := range rec.find("POOL_METRICS")[from:] {
			var d struct {
				RPS float64 `json:"requests_per_sec"`
			}
			_ = json.Unmarshal(ev.Data.EventDetails["pool_metrics_details"], &d)
			out = append(out, d.RPS)
		}
		return out
	}
	waitFor(t, "two intervals with traffic", 10*time.Second, func() bool { return len(rps(0)) >= 2 })
	from := len(rec.find("POOL_METRICS"))
	st.put(spec.KindPool, "web", withInterval(poolOf(a))) // b leaves
	waitFor(t, "three intervals", 10*time.Second, func() bool { return len(rps(from)) >= 3 })
	st.put(spec.KindPool, "web", withInterval(poolOf(a, b))) // b is back
	waitFor(t, "six intervals", 10*time.Second, func() bool { return len(rps(from)) >= 6 })
	for i, r := range rps(from) {
		if r <= 0 {
			t.Fatalf("interval %d after the change: requests_per_sec %v (all: %v)", i, r, rps(from))
		}
	}
}

// load sends requests to url, one after another, until the returned stop
// is called; stop returns once the last one is done.
func load(url string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			if resp, err := http.Get(url); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			time.Sleep(time.Millisecond)
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
