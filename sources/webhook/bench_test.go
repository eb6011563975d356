package webhook

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/vigiltest"
)

// BenchmarkWebhookHMAC posts GitHub-signed JSON deliveries, each with its
// own delivery id, over loopback HTTP from 32 clients to the handler in
// front of a real embedded bus: HMAC check, dedup lookup, a durable
// publish and the dedup record per request. It reports requests/s and the
// p50 and p99 latency seen by the clients.
func BenchmarkWebhookHMAC(b *testing.B) {
	r := newRig(b, ghReceiver, rigOpts{quiet: true})
	const clients = 32
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := r.srv.URL + "/hooks/github"
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"acme/shop"},"head_commit":{"id":"0123456789abcdef","message":"fix"}}`)
	sig := "sha256=" + hmacHex(ghSecret, string(body))

	var next atomic.Int64
	lat := make([][]time.Duration, clients)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	cpu := vigiltest.ReadCPUTimes()
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set(HeaderGitHubEvent, "push")
				req.Header.Set(HeaderGitHubDelivery, fmt.Sprintf("bench-%d", n))
				req.Header.Set(HeaderGitHubSignature256, sig)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	steal := cpu.StealSince()
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, b.N)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(steal, "%steal")
}
