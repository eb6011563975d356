package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilhq/vigil/vigiltest"
)

// execution is the part of an execution record the benchmarks read.
type execution struct {
	ID        string     `json:"id"`
	Status    string     `json:"status"`
	Reason    string     `json:"reason"`
	Queued    time.Time  `json:"queued"`
	FirstLine *time.Time `json:"first_line"`
	Finished  *time.Time `json:"finished"`
	Stdout    string     `json:"stdout"`
	Warm      bool       `json:"warm"`
}

func apiDo(s *vigiltest.Server, method, path, body string) (int, []byte, error) {
	code, _, b, err := apiDoRetry(s, method, path, body)
	return code, b, err
}

// apiDoRetry is apiDo that also returns the answer's Retry-After (10 ms
// when it has none).
func apiDoRetry(s *vigiltest.Server, method, path, body string) (int, time.Duration, []byte, error) {
	req, _ := http.NewRequest(method, s.API+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, nil, err
	}
	defer resp.Body.Close()
	retry := 10 * time.Millisecond
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && n >= 0 {
		retry = time.Duration(n) * time.Second
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, retry, b, err
}

func applyScript(b *testing.B, s *vigiltest.Server, name, source string) {
	b.Helper()
	src, _ := json.Marshal(source)
	body := fmt.Sprintf(`{"objects":[{"kind":"ControlScript","name":%q,"spec":{"source":%s,"timeout":"30s"}}]}`, name, src)
	if code, out, err := apiDo(s, "POST", "/api/v1/apply", body); err != nil || code != 200 {
		b.Fatalf("apply: %d %s %v", code, out, err)
	}
}

func runAndWait(s *vigiltest.Server, name string) (*execution, error) {
	code, out, err := apiDo(s, "POST", "/api/v1/controlscripts/"+name+"/run?wait=true", "{}")
	if err != nil {
		return nil, err
	}
	if code != 200 {
		return nil, fmt.Errorf("run: %d %s", code, out)
	}
	var ex execution
	if err := json.Unmarshal(out, &ex); err != nil {
		return nil, err
	}
	if ex.Status != "succeeded" {
		return nil, fmt.Errorf("run %s: %s %s", ex.ID, ex.Status, ex.Reason)
	}
	return &ex, nil
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

// BenchmarkRunToFirstLine: from the run request (the execution's queued
// time) to the timestamp the script's first line takes, one run at a time,
// with the warm pool (each run forked from a fork server) and cold (each
// run a fresh interpreter, --no-warm-pool); beside them a bare
// /usr/bin/python3 start on this machine. ms-exec is the sandbox's report
// of the moment it released the script.
func BenchmarkRunToFirstLine(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	for _, mode := range []string{"warm", "cold"} {
		b.Run(mode, func(b *testing.B) {
			var flags []string
			if mode == "cold" {
				flags = append(flags, "--no-warm-pool")
			}
			s := vigiltest.Start(b, vigilBin, b.TempDir(), nil, append([]string{"--nats-listen", "off"}, flags...)...)
			applyScript(b, s, "first", "import time; print(time.time_ns())\n")
			waitMode(b, s, "first", mode == "warm")
			lat := make([]time.Duration, 0, b.N)
			execd := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu := vigiltest.ReadCPUTimes()
			for range b.N {
				ex, err := runAndWait(s, "first")
				if err != nil {
					b.Fatal(err)
				}
				if ex.Warm != (mode == "warm") {
					b.Fatalf("run %s: warm %v in the %s benchmark", ex.ID, ex.Warm, mode)
				}
				var ns int64
				if _, err := fmt.Sscan(strings.TrimSpace(ex.Stdout), &ns); err != nil || ex.FirstLine == nil {
					b.Fatalf("run %s: stdout %q, first_line %v", ex.ID, ex.Stdout, ex.FirstLine)
				}
				lat = append(lat, time.Unix(0, ns).Sub(ex.Queued))
				execd = append(execd, ex.FirstLine.Sub(ex.Queued))
			}
			b.StopTimer()
			p50, p99 := percentiles(lat)
			b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99")
			p50, _ = percentiles(execd)
			b.ReportMetric(float64(p50.Microseconds())/1000, "ms-exec-p50")
			b.ReportMetric(cpu.StealSince(), "%steal")
		})
	}
	b.Run("bare-python", func(b *testing.B) {
		bare := make([]time.Duration, 0, b.N)
		for range b.N {
			t0 := time.Now()
			if err := exec.Command("/usr/bin/python3", "-c", "pass").Run(); err != nil {
				b.Fatal(err)
			}
			bare = append(bare, time.Since(t0))
		}
		p50, p99 := percentiles(bare)
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50")
		b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99")
	})
}

// BenchmarkEventToFirstLine: an event published through the API raises an
// alert whose ActionGroup runs a ControlScript; the time from just before
// the publish to the script's first line (the time it prints), through the
// rules engine, the actions stream and the runner, with the warm pool and
// cold. One event at a time: each is published 10 ms after the previous
// run has ended, and the script reports its time over loopback, so that
// nothing of the benchmark's own competes with the run it measures.
func BenchmarkEventToFirstLine(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	for _, mode := range []string{"warm", "cold"} {
		b.Run(mode, func(b *testing.B) {
			var flags []string
			if mode == "cold" {
				flags = append(flags, "--no-warm-pool")
			}
			s := vigiltest.Start(b, vigilBin, b.TempDir(), nil, append([]string{"--nats-listen", "off"}, flags...)...)
			// The script reports its first line's time over loopback, so that
			// no polling of the API competes with the runs for the CPU.
			script, reports := firstLineReports(b)
			applyScript(b, s, "first", script)
			waitMode(b, s, "first", mode == "warm")
			for len(reports) > 0 {
				<-reports // waitMode's
			}
			body := `{"objects":[
				{"kind":"ActionGroup","name":"run-first","spec":{"controlscript":"first"}},
				{"kind":"AlertConfig","name":"each","spec":{"events":["SERVER_DOWN"],"throttle":"0s","action_group":"run-first"}}]}`
			if code, out, err := apiDo(s, "POST", "/api/v1/apply", body); err != nil || code != 200 {
				b.Fatalf("apply: %d %s %v", code, out, err)
			}
			time.Sleep(200 * time.Millisecond) // the engine follows the config
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu := vigiltest.ReadCPUTimes()
			for i := range b.N {
				t0 := time.Now()
				ev := fmt.Sprintf(`{"event_id":"SERVER_DOWN","obj_type":"pool","obj_name":"p%d"}`, i)
				if code, out, err := apiDo(s, "POST", "/api/v1/events", ev); err != nil || code != 201 {
					b.Fatalf("publish: %d %s %v", code, out, err)
				}
				ns, id, err := waitReport(reports, fmt.Sprintf(`"obj_name":"p%d"`, i))
				if err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Unix(0, ns).Sub(t0))
				// One event at a time: the next once this run has ended and
				// the pool has prepared its replacement.
				b.StopTimer()
				if _, err := waitFinished(s, id, 30*time.Second); err != nil {
					b.Fatal(err)
				}
				time.Sleep(10 * time.Millisecond)
				b.StartTimer()
			}
			b.StopTimer()
			steal := cpu.StealSince()
			p50, p99 := percentiles(lat)
			b.ReportMetric(float64(p50.Microseconds())/1000, "ms-p50")
			b.ReportMetric(float64(p99.Microseconds())/1000, "ms-p99")
			b.ReportMetric(steal, "%steal")
		})
	}
}

// firstLineReports listens on loopback and returns a script that takes
// the time first, prints it, then sends the listener that time, its
// execution id and its alert, which the channel yields.
func firstLineReports(b *testing.B) (script string, reports <-chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ch := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if data, err := io.ReadAll(c); err == nil {
					select {
					case ch <- string(data):
					case <-time.After(time.Minute):
					}
				}
			}()
		}
	}()
	script = fmt.Sprintf("import time; t = time.time_ns(); print(t, flush=True)\n"+
		"import os, socket, sys\nwith socket.create_connection(('127.0.0.1', %d)) as c:\n"+
		"    c.sendall(b'%%d %%s ' %% (t, os.environ['VIGIL_EXECUTION_ID'].encode()) + sys.argv[1].encode())\n",
		ln.Addr().(*net.TCPAddr).Port)
	return script, ch
}

// waitReport returns the time and execution id in the first report whose
// alert holds marker.
func waitReport(reports <-chan string, marker string) (ns int64, id string, err error) {
	deadline := time.After(30 * time.Second)
	for {
		select {
		case r := <-reports:
			if !strings.Contains(r, marker) {
				continue // a late report of an earlier event
			}
			if _, err := fmt.Sscan(r, &ns, &id); err != nil {
				return 0, "", fmt.Errorf("report %q: %w", r, err)
			}
			return ns, id, nil
		case <-deadline:
			return 0, "", fmt.Errorf("no report for %s", marker)
		}
	}
}

// waitFinished waits up to timeout for execution id to have a final
// status, and returns its record.
func waitFinished(s *vigiltest.Server, id string, timeout time.Duration) (*execution, error) {
	deadline := time.Now().Add(timeout)
	for {
		code, out, err := apiDo(s, "GET", "/api/v1/executions/"+id, "")
		if err != nil {
			return nil, err
		}
		var ex execution
		if code != 200 || json.Unmarshal(out, &ex) != nil {
			return nil, fmt.Errorf("execution %s: %d %s", id, code, out)
		}
		if ex.Finished != nil {
			return &ex, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("execution %s still %s after %s", id, ex.Status, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitMode runs name until a run starts the way the benchmark wants: the
// fork server takes a moment to start after vigil does.
func waitMode(b *testing.B, s *vigiltest.Server, name string, warm bool) {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ex, err := runAndWait(s, name)
		if err != nil {
			b.Fatal(err)
		}
		if ex.Warm == warm {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("runs are not warm=%v after 30 s", warm)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// BenchmarkExecutionsPerSecond: trivial scripts, limits enforced (each run
// in its own cgroup and namespaces), records persisted, for a fixed time
// (BENCH_RUN_SECONDS, default 60), with the warm pool and cold. Clients keep
// the run queue full, as a burst of alerts would (POST .../run without
// waiting; a 429 from a full queue makes a client wait as its Retry-After
// says, a second, while the queue holds seconds of work); the rate
// counts runs whose script wrote its first timestamp within the window,
// read from the execution records afterwards.
func BenchmarkExecutionsPerSecond(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("the sandbox needs root")
	}
	window := 60 * time.Second
	if v := os.Getenv("BENCH_RUN_SECONDS"); v != "" {
		if n, err := time.ParseDuration(v + "s"); err == nil {
			window = n
		}
	}
	const scripts = 4
	for _, mode := range []string{"warm", "cold"} {
		b.Run(mode, func(b *testing.B) {
			flags := []string{"--nats-listen", "off", "--runner-pool-size", "16"}
			if mode == "cold" {
				flags = append(flags, "--no-warm-pool")
			}
			s := vigiltest.Start(b, vigilBin, b.TempDir(), nil, flags...)
			for i := range scripts {
				name := fmt.Sprintf("tick%d", i)
				applyScript(b, s, name, "import time\nprint(time.time_ns(), flush=True)\n")
				waitMode(b, s, name, mode == "warm")
			}
			var (
				stop atomic.Bool
				mu   sync.Mutex
				ids  []string
				full atomic.Int64
				wg   sync.WaitGroup
			)
			b.ResetTimer()
			cpu := vigiltest.ReadCPUTimes()
			begin := time.Now()
			for c := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					path := fmt.Sprintf("/api/v1/controlscripts/tick%d/run", c%scripts)
					for !stop.Load() {
						code, retry, out, err := apiDoRetry(s, "POST", path, "{}")
						if err != nil {
							b.Error(err)
							return
						}
						if code == http.StatusTooManyRequests {
							full.Add(1)
							time.Sleep(retry)
							continue
						}
						var ex execution
						if code/100 != 2 || json.Unmarshal(out, &ex) != nil {
							b.Errorf("run: %d %s", code, out)
							return
						}
						mu.Lock()
						ids = append(ids, ex.ID)
						mu.Unlock()
					}
				}()
			}
			time.Sleep(window)
			stop.Store(true)
			steal, busy := cpu.StealSince(), cpu.BusySince()
			wg.Wait()
			b.StopTimer()
			in, failed := 0, 0
			end := begin.Add(window).UnixNano()
			drain := time.Now().Add(5 * time.Minute)
			for _, id := range ids {
				ex, err := waitFinished(s, id, time.Until(drain))
				if err != nil {
					b.Fatal(err)
				}
				if ex.Status != "succeeded" || ex.Warm != (mode == "warm") {
					if failed++; failed <= 3 {
						b.Logf("run %s: %s %s warm=%v", id, ex.Status, ex.Reason, ex.Warm)
					}
					continue
				}
				var ns int64
				fmt.Sscan(strings.TrimSpace(ex.Stdout), &ns)
				if ns >= begin.UnixNano() && ns < end {
					in++
				}
			}
			b.ReportMetric(float64(in)/window.Seconds(), "executions/s")
			if in > 0 {
				// The machine's CPU per run: vigil, NATS, the sandboxes,
				// Python and these clients, whatever the steal.
				b.ReportMetric(float64(busy.Microseconds())/1000/float64(in), "cpu-ms/exec")
			}
			b.ReportMetric(float64(failed), "failed-or-other-mode")
			b.ReportMetric(float64(full.Load()), "queue-full-429s")
			b.ReportMetric(steal, "%steal")
		})
	}
}
