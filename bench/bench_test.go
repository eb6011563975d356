// Package bench measures the figures of the design's performance table
// against the real binary: durable events per second through the API, ready
// time with an empty and a 1 GiB store, idle RSS, and ControlScript latency
// and rate. Run with `make bench`.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/events"
	"github.com/vigilhq/vigil/vigiltest"
)

var (
	vigilBin string
	bigOnce  sync.Once
	bigDir   string
)

func TestMain(m *testing.M) {
	vigiltest.Main(m, &vigilBin, func() {
		if bigDir != "" {
			os.RemoveAll(bigDir)
		}
	})
}

// eventPoster posts bodies to POST /api/v1/events over up to 32
// connections and expects 201.
func eventPoster(s *vigiltest.Server, contentType string) func(body string) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, MaxConnsPerHost: 32}}
	return func(body string) error {
		req, _ := http.NewRequest("POST", s.API+"/api/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Token)
		req.Header.Set("Content-Type", contentType)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
}

// drive runs 32 clients, each sending one request at a time of per events,
// until b.N events are sent, and reports events/s.
func drive(b *testing.B, per int64, send func() error) {
	const clients = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	b.ResetTimer()
	cpu := vigiltest.ReadCPUTimes()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(per) <= int64(b.N)+per-1 {
				if err := send(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	sent := (int64(b.N) + per - 1) / per * per
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "events/s")
	b.ReportMetric(cpu.StealSince(), "%steal")
}

const benchEvent = `{"event_id":"BENCH_EVENT","obj_type":"pool","obj_name":"web","event_details":{"server":"10.0.0.5:8080"}}`

// BenchmarkPostEvents: 32 clients each POST an event and wait for its
// durable acknowledgement before sending the next.
func BenchmarkPostEvents(b *testing.B) {
	s := vigiltest.Start(b, vigilBin, b.TempDir(), nil, "--nats-listen", "off")
	post := eventPoster(s, "application/json")
	for range 200 { // warm the connections
		if err := post(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
	drive(b, 1, func() error { return post(benchEvent) })
}

// BenchmarkPostEventsBatched: the same with CloudEvents batches of 100
// events per request (b.N counts events).
func BenchmarkPostEventsBatched(b *testing.B) {
	s := vigiltest.Start(b, vigilBin, b.TempDir(), nil, "--nats-listen", "off")
	const per = 100
	post := eventPoster(s, "application/cloudevents-batch+json")
	body := "[" + strings.Repeat(benchEvent+",", per-1) + benchEvent + "]"
	drive(b, per, func() error { return post(body) })
}

// BenchmarkReadyEmpty: from exec to /readyz answering 200 on a new data dir.
func BenchmarkReadyEmpty(b *testing.B) {
	for range b.N {
		readyTime(b, b.TempDir())
	}
}

// BenchmarkReady1GiB: the same with 1 GiB of events in the store.
func BenchmarkReady1GiB(b *testing.B) {
	bigOnce.Do(func() {
		bigDir = filepath.Join(os.TempDir(), fmt.Sprintf("vigil-bench-1gib-%d", os.Getpid()))
		fill(b, bigDir, 1<<30)
		// One start to let JetStream write its index after the fill.
		s := vigiltest.Start(b, vigilBin, bigDir, nil, "--nats-listen", "off")
		if err := s.Term(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	})
	dir := bigDir
	b.ResetTimer()
	for range b.N {
		readyTime(b, dir)
	}
}

func readyTime(b *testing.B, dir string) {
	b.Helper()
	s := vigiltest.Start(b, vigilBin, dir, nil, "--nats-listen", "off")
	for {
		resp, err := http.Get(s.API + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	ms := float64(time.Since(s.Started).Microseconds()) / 1000
	b.ReportMetric(ms, "ms-ready")
	b.StopTimer()
	if err := s.Term(30 * time.Second); err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
}

// fill writes about size bytes of events into the data dir's events stream.
func fill(b *testing.B, dir string, size int64) {
	b.Helper()
	ctx := context.Background()
	bus, err := events.StartBus(ctx, events.BusOptions{StoreDir: filepath.Join(dir, "jetstream")})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Stop()
	details := map[string]string{"blob": strings.Repeat("x", 16<<10)}
	var written int64
	for i := 0; written < size-(32<<20); i++ {
		ev, err := events.New("BENCH_FILL", "pool", fmt.Sprintf("p%d", i%100), details, "/bench", time.Now())
		if err != nil {
			b.Fatal(err)
		}
		f, err := bus.PublishAsync(ev)
		if err != nil {
			b.Fatal(err)
		}
		_ = f
		written += 16 << 10
		if i%4096 == 4095 {
			select {
			case <-bus.JetStream().PublishAsyncComplete():
			case <-time.After(60 * time.Second):
				b.Fatal("fill stalled")
			}
		}
	}
	<-bus.JetStream().PublishAsyncComplete()
	st, err := bus.JetStream().Stream(ctx, events.EventsStream)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("store filled: %d events, %d MiB", st.CachedInfo().State.Msgs, st.CachedInfo().State.Bytes>>20)
}

// BenchmarkIdleRSS: resident memory of `vigil serve` after 30 s idle.
func BenchmarkIdleRSS(b *testing.B) {
	for range b.N {
		s := vigiltest.Start(b, vigilBin, b.TempDir(), nil)
		time.Sleep(30 * time.Second)
		rss, err := s.RSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(rss)/(1<<20), "MB-rss")
		pss, err := s.DescendantsPSS()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(pss)/(1<<20), "MB-pss-shims-and-warm-pool")
		if err := s.Term(30 * time.Second); err != nil {
			b.Fatal(err)
		}
	}
}
