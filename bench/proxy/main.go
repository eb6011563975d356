// Command proxy is the data plane's peer benchmark: the same "403 on
// /secure/" DataScript logic in nginx with its Lua module, in HAProxy with
// its Lua, and in vigil, each in front of one nginx backend, measured with
// wrk on loopback in interleaved rounds. It prints requests/s and p99 per
// proxy and vigil's ratios to the others.
//
// Run it with `make bench-proxy`, which installs nginx, its Lua module,
// HAProxy and wrk from apt first.
package main

import (
	"bytes"
	"embed"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigilhq/vigil/vigiltest"
)

//go:embed backend.nginx.conf nginx-lua.conf haproxy.cfg secure.lua vigil.yaml
var files embed.FS

type target struct {
	name string
	port int
	pid  int // the proxy's process; its children count with it
	rps  []float64
	p99  []time.Duration
	cpu  []float64 // CPU µs per request
}

func main() {
	rounds := flag.Int("rounds", 3, "interleaved rounds")
	duration := flag.Duration("duration", 10*time.Second, "length of each wrk run")
	conns := flag.Int("connections", 50, "wrk connections")
	threads := flag.Int("threads", 2, "wrk threads")
	vigilBin := flag.String("vigil", "", "vigil binary (default: build it)")
	flag.Parse()
	if err := run(*rounds, *duration, *conns, *threads, *vigilBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench-proxy:", err)
		os.Exit(1)
	}
}

func run(rounds int, duration time.Duration, conns, threads int, vigilBin string) error {
	for _, bin := range []string{"nginx", "haproxy", "wrk"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed: run make bench-proxy, which installs it", bin)
		}
	}
	dir, err := os.MkdirTemp("", "vigil-bench-proxy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if vigilBin == "" {
		vigilBin = filepath.Join(dir, "vigil")
		build := exec.Command("go", "build", "-trimpath", "-o", vigilBin, "./cmd/vigil")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build vigil: %w", err)
		}
	}
	ports := map[string]int{}
	for _, k := range []string{"BACKEND_PORT", "NGINX_PORT", "HAPROXY_PORT", "VIGIL_PORT"} {
		if ports[k], err = freePort(); err != nil {
			return err
		}
	}
	render := func(name string) (string, error) {
		b, err := files.ReadFile(name)
		if err != nil {
			return "", err
		}
		s := strings.ReplaceAll(string(b), "{{DIR}}", dir)
		for k, v := range ports {
			s = strings.ReplaceAll(s, "{{"+k+"}}", strconv.Itoa(v))
		}
		path := filepath.Join(dir, name)
		return path, os.WriteFile(path, []byte(s), 0o600)
	}
	for _, f := range []string{"backend.nginx.conf", "nginx-lua.conf", "haproxy.cfg", "secure.lua", "vigil.yaml"} {
		if _, err := render(f); err != nil {
			return err
		}
	}

	var procs []*exec.Cmd
	defer func() {
		// SIGTERM lets nginx's master stop its workers; SIGKILL would
		// leave them running.
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			done := make(chan struct{})
			go func() { _ = p.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = p.Process.Kill()
				<-done
			}
		}
	}()
	start := func(log string, name string, args ...string) error {
		cmd := exec.Command(name, args...)
		f, err := os.Create(filepath.Join(dir, log))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = f, f
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		return nil
	}
	pidOf := func(i int) int { return procs[i].Process.Pid }
	if err := start("backend.log", "nginx", "-p", dir, "-c", filepath.Join(dir, "backend.nginx.conf")); err != nil {
		return err
	}
	if err := start("nginx-lua.log", "nginx", "-p", dir, "-c", filepath.Join(dir, "nginx-lua.conf")); err != nil {
		return err
	}
	if err := start("haproxy.log", "haproxy", "-f", filepath.Join(dir, "haproxy.cfg")); err != nil {
		return err
	}
	data := filepath.Join(dir, "vigil-data")
	if err := start("vigil.log", vigilBin, "serve", "--data-dir", data, "--listen", "127.0.0.1:0", "--nats-listen", "off"); err != nil {
		return err
	}
	api, err := waitAddr(filepath.Join(data, "addr"), 30*time.Second)
	if err != nil {
		return fmt.Errorf("vigil did not start (see its log): %w", err)
	}
	token, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		return err
	}
	apply := exec.Command(vigilBin, "apply", "-f", filepath.Join(dir, "vigil.yaml"))
	apply.Env = append(os.Environ(), "VIGIL_ADDR="+api, "VIGIL_TOKEN="+strings.TrimSpace(string(token)))
	if out, err := apply.CombinedOutput(); err != nil {
		return fmt.Errorf("vigil apply: %w: %s", err, out)
	}

	targets := []*target{
		{name: "nginx+Lua", port: ports["NGINX_PORT"], pid: pidOf(1)},
		{name: "HAProxy+Lua", port: ports["HAPROXY_PORT"], pid: pidOf(2)},
		{name: "vigil", port: ports["VIGIL_PORT"], pid: pidOf(3)},
	}
	for _, t := range append([]*target{{name: "backend", port: ports["BACKEND_PORT"]}}, targets...) {
		if err := check(t, t.name != "backend"); err != nil {
			return err
		}
	}
	fmt.Printf("wrk -t%d -c%d -d%s, %d interleaved rounds, 2 cores shared by wrk, the backend and the proxy\n\n", threads, conns, duration, rounds)
	for r := range rounds {
		// Rotate the order so that no proxy always runs first or last.
		order := slices.Clone(targets)
		for range r % len(order) {
			order = append(order[1:], order[0])
		}
		for _, t := range order {
			before, machine := cpuTime(t.pid), vigiltest.ReadCPUTimes()
			rps, p99, err := wrk(t.port, duration, conns, threads)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			cpu := float64((cpuTime(t.pid) - before).Microseconds()) / (rps * duration.Seconds())
			t.rps, t.p99, t.cpu = append(t.rps, rps), append(t.p99, p99), append(t.cpu, cpu)
			// Steal: what the hypervisor took from this machine meanwhile.
			fmt.Printf("round %d  %-12s %9.0f req/s  p99 %-8s %5.1f µs CPU/request  steal %4.1f%%\n",
				r+1, t.name, rps, p99.Round(10*time.Microsecond), cpu, machine.StealSince())
		}
	}
	fmt.Printf("\n%-12s %12s %10s %16s\n", "proxy", "median req/s", "median p99", "CPU µs/request")
	for _, t := range targets {
		fmt.Printf("%-12s %12.0f %10s %16.1f\n", t.name, median(t.rps), medianD(t.p99).Round(10*time.Microsecond), median(t.cpu))
	}
	v := targets[2]
	fmt.Printf("\nvigil / nginx+Lua:   %.2f× req/s (target ≥ 0.80)\n", median(v.rps)/median(targets[0].rps))
	fmt.Printf("vigil / HAProxy+Lua: %.2f× req/s (target ≥ 1.00)\n", median(v.rps)/median(targets[1].rps))
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitAddr waits for vigil's addr file and returns the API URL in it.
func waitAddr(path string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if u, ok := strings.CutPrefix(line, "api="); ok {
					return u, nil
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "", errors.New("no addr file")
}

// check waits until the target answers / with 200 and, for a proxy,
// /secure/ with 403.
func check(t *target, proxy bool) error {
	base := fmt.Sprintf("http://127.0.0.1:%d", t.port)
	deadline := time.Now().Add(15 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		last = nil
		for path, want := range map[string]int{"/": 200, "/secure/": 403} {
			if path == "/secure/" && !proxy {
				continue
			}
			resp, err := http.Get(base + path)
			if err != nil {
				last = err
				break
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				last = fmt.Errorf("%s%s answered %d, want %d", base, path, resp.StatusCode, want)
				break
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready: %w", t.name, last)
}

var (
	rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99Re = regexp.MustCompile(`\n\s+99%\s+([0-9.]+)(us|ms|s)`)
)

func wrk(port int, d time.Duration, conns, threads int) (float64, time.Duration, error) {
	out, err := exec.Command("wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(conns),
		"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", fmt.Sprintf("http://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("wrk: %w: %s", err, out)
	}
	if bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		return 0, 0, fmt.Errorf("wrk saw errors:\n%s", out)
	}
	m := rpsRe.FindSubmatch(out)
	l := p99Re.FindSubmatch(out)
	if m == nil || l == nil {
		return 0, 0, fmt.Errorf("cannot read wrk's output:\n%s", out)
	}
	rps, _ := strconv.ParseFloat(string(m[1]), 64)
	v, _ := strconv.ParseFloat(string(l[1]), 64)
	unit := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}[string(l[2])]
	return rps, time.Duration(v * float64(unit)), nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianD(v []time.Duration) time.Duration {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// cpuTime is the CPU time used so far by pid and its children (nginx's
// workers), read from /proc.
func cpuTime(pid int) time.Duration {
	var ticks int64
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		// Fields after the command, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+2:]))
		ppid, _ := strconv.Atoi(f[1])
		if p != pid && ppid != pid {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	// Linux reports clock ticks of 1/100 s.
	return time.Duration(ticks) * 10 * time.Millisecond
}
