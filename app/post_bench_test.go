package app

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
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
