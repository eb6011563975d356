package app

import (
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPostEventsInProcess is the API's publish path with client and
// server in one process, for profiling (`-cpuprofile`).
func BenchmarkPostEventsInProcess(b *testing.B) {
	in := startInstance(b, b.TempDir(), func(o *Options) { o.NATSListen = "off" })
	const clients = 32
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	body := `{"event_id":"BENCH_EVENT","obj_type":"pool","obj_name":"web","event_details":{"server":"10.0.0.5:8080"}}`
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				req, _ := http.NewRequest("POST", in.api+"/api/v1/events", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+in.token)
				resp, err := c.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

// BenchmarkRunsInProcess runs trivial ControlScripts through the API with
// the queue kept full, client and vigil in one process, for profiling
// vigil's share of a run (`-cpuprofile`); the scripts run in their
// sandboxes as usual.
func BenchmarkRunsInProcess(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	in := startInstance(b, b.TempDir(), func(o *Options) { o.NATSListen = "off" })
	do := func(method, path, body string) (int, []byte) {
		req, _ := http.NewRequest(method, in.api+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+in.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	if code, out := do("POST", "/api/v1/apply", `{"objects":[{"kind":"ControlScript","name":"first","spec":{"source":"print(1)\n"}}]}`); code != 200 {
		b.Fatalf("apply: %d %s", code, out)
	}
	for range 20 { // until the warm pool serves
		if code, out := do("POST", "/api/v1/controlscripts/first/run?wait=true", "{}"); code != 200 || !strings.Contains(string(out), `"warm":true`) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		break
	}
	var next, full atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for range 4 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				for {
					code, _ := do("POST", "/api/v1/controlscripts/first/run", "{}")
					if code != http.StatusTooManyRequests {
						break
					}
					full.Add(1)
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	for {
		_, out := do("GET", "/api/v1/executions?status=queued&limit=1", "")
		_, out2 := do("GET", "/api/v1/executions?status=running&limit=1", "")
		if strings.Contains(string(out), `"items":[]`) && strings.Contains(string(out2), `"items":[]`) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
	b.ReportMetric(float64(full.Load()), "429s")
}
