// Package vigiltest builds the vigil binary and runs `vigil serve` as a child
// process for end-to-end tests and benchmarks.
package vigiltest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/vigil into dir and returns the binary's path.
func Build(dir string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	bin := filepath.Join(dir, "vigil")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build vigil: %w", err)
	}
	return bin, nil
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a listener a child process opens.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Server is a `vigil serve` child process.
type Server struct {
	Bin   string
	Dir   string
	Cmd   *exec.Cmd
	API   string // http://127.0.0.1:port
	NATS  string // nats://127.0.0.1:port, or "" when off
	Token string // the admin token
	// Started is when the process was started; Ready when its addr file appeared.
	Started, Ready time.Time

	logs *SyncBuffer
	exit chan error
	once sync.Once
}

// Start runs `vigil serve` on dir with loopback ports picked by the kernel,
// waits until it has written its addr file and registers a cleanup that
// stops it.
func Start(tb testing.TB, bin, dir string, env []string, args ...string) *Server {
	tb.Helper()
	_ = os.Remove(filepath.Join(dir, "addr"))
	argv := append([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:0"}, args...)
	cmd := exec.Command(bin, argv...)
	cmd.Env = append(os.Environ(), env...)
	s := &Server{Bin: bin, Dir: dir, Cmd: cmd, logs: &SyncBuffer{}, exit: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = io.Discard, s.logs
	s.Started = time.Now()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { s.exit <- cmd.Wait() }()
	// A graceful stop removes the instance's cgroups, which a killed one
	// leaves behind; a run still going after a moment dies with it.
	tb.Cleanup(func() { _ = s.Term(5 * time.Second) })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "addr")); err == nil {
			s.Ready = time.Now()
			for _, line := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(line, "api="); ok {
					s.API = v
				}
				if v, ok := strings.CutPrefix(line, "nats="); ok {
					s.NATS = v
				}
			}
			break
		}
		select {
		case err := <-s.exit:
			s.exit <- err
			tb.Fatalf("vigil serve exited: %v\n%s", err, s.Logs())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("vigil serve not ready\n%s", s.Logs())
		}
		time.Sleep(2 * time.Millisecond)
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		tb.Fatal(err)
	}
	s.Token = strings.TrimSpace(string(tok))
	return s
}

// Logs returns what the process wrote to stderr so far.
func (s *Server) Logs() string { return s.logs.String() }

// Kill sends SIGKILL and waits for the process to end. It is idempotent.
func (s *Server) Kill() {
	s.once.Do(func() {
		_ = s.Cmd.Process.Signal(syscall.SIGKILL)
		select {
		case <-s.exit: //nolint:errcheck // a killed process's exit status says nothing
		case <-time.After(10 * time.Second):
		}
	})
}

// Term sends SIGTERM and returns the exit error once the process ended.
func (s *Server) Term(timeout time.Duration) error {
	var err error
	s.once.Do(func() {
		if err = s.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return
		}
		select {
		case err = <-s.exit:
		case <-time.After(timeout):
			_ = s.Cmd.Process.Signal(syscall.SIGKILL)
			err = fmt.Errorf("no exit %s after SIGTERM", timeout)
			select {
			case <-s.exit: //nolint:errcheck // killed: its exit status says nothing
			case <-time.After(10 * time.Second):
			}
		}
	})
	return err
}

// Exited returns a channel that yields the exit error once.
func (s *Server) Exited() <-chan error { return s.exit }

// CLI runs a client command against s and returns stdout, stderr and the exit code.
func (s *Server) CLI(tb testing.TB, stdin string, args ...string) (string, string, int) {
	tb.Helper()
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = append(os.Environ(), "VIGIL_ADDR="+s.API, "VIGIL_TOKEN="+s.Token)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		tb.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// RSS returns the resident set size of the process in bytes.
func (s *Server) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.Cmd.Process.Pid)
}

// Proc names a process: its pid and its start time (field 22 of
// /proc/<pid>/stat), so a reused pid is not mistaken for it.
type Proc struct {
	Pid   int
	Start string
}

// procTable reads every process's parent and start time.
func procTable() map[int][2]string {
	t := map[int][2]string{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if f := strings.Fields(string(b[i+1:])); i > 0 && len(f) > 19 {
			t[pid] = [2]string{f[1], f[19]} // ppid, starttime
		}
	}
	return t
}

// Descendants lists every process below vigil now: the sandbox shims, the
// warm pool's fork servers, the runs and whatever they started.
func (s *Server) Descendants() []Proc {
	t := procTable()
	var out []Proc
	for pid, v := range t {
		for p, _ := strconv.Atoi(v[0]); p > 1; {
			if p == s.Cmd.Process.Pid {
				out = append(out, Proc{Pid: pid, Start: v[1]})
				break
			}
			p, _ = strconv.Atoi(t[p][0])
		}
	}
	return out
}

// ChildrenOf lists the pids whose parent is pid.
func ChildrenOf(pid int) []int {
	var out []int
	for p, v := range procTable() {
		if v[0] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}

// Alive returns those of procs that still exist (zombies included).
func Alive(procs []Proc) []Proc {
	t := procTable()
	var out []Proc
	for _, p := range procs {
		if v, ok := t[p.Pid]; ok && v[1] == p.Start {
			out = append(out, p)
		}
	}
	return out
}

// DescendantsPSS sums the proportional set size (shared pages divided
// among their sharers) of every process below vigil: the sandbox shims
// waiting for runs, the warm pool's fork servers and the runs they prepared.
func (s *Server) DescendantsPSS() (int64, error) {
	var total int64
	for _, p := range s.Descendants() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", p.Pid))
		if err != nil {
			continue // gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Pss:"); ok {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
					total += kb << 10
				}
			}
		}
	}
	return total, nil
}

// SyncBuffer is a bytes.Buffer that one goroutine may write (a logger, a
// command's output) while another reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Main builds the binary into a temporary directory (or takes the one
// named by VIGIL_TEST_BIN), stores its path in *bin, runs the tests, runs
// cleanups and exits; call it from TestMain.
func Main(m *testing.M, bin *string, cleanups ...func()) {
	// VIGIL_TEST_BIN: a binary built elsewhere, to compare two builds with
	// one test.
	if *bin = os.Getenv("VIGIL_TEST_BIN"); *bin == "" {
		dir, err := os.MkdirTemp("", "vigil-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if *bin, err = Build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		cleanups = append(cleanups, func() { os.RemoveAll(dir) })
	}
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}
