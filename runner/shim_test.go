package runner

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// shimBin is a vigil binary built once by TestMain (as root only) for the
// tests that run the sandbox shim; shimBuildErr says why it is missing.
var (
	shimBin      string
	shimBuildErr error
)

// shimParentEnv makes the test binary a tiny parent that starts one
// sandbox (the spec is the variable's JSON value) and then waits to be
// killed; see TestShimParentDeath.
const shimParentEnv = "VIGIL_SHIM_TEST_PARENT"

const python = "/usr/bin/python3"

func TestMain(m *testing.M) {
	if doc := os.Getenv(shimParentEnv); doc != "" {
		os.Exit(shimTestParent(doc))
	}
	os.Exit(func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "vigil-shim-bin-")
			if err != nil {
				shimBuildErr = err
			} else {
				defer os.RemoveAll(dir)
				shimBin, shimBuildErr = buildVigil(filepath.Join(dir, "vigil"))
			}
		}
		code := m.Run()
		removeTestCgroupParents()
		return code
	}())
}

// removeTestCgroupParents removes the parent cgroups that this process's
// runners shared (vigil-test-<pid>…), now empty.
func removeTestCgroupParents() {
	dirs, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/*/vigil-test-%d*", os.Getpid()))
	more, _ := filepath.Glob(fmt.Sprintf("/sys/fs/cgroup/vigil-test-%d*", os.Getpid()))
	for _, d := range append(dirs, more...) {
		_ = syscall.Rmdir(d)
	}
}

// buildVigil builds ./cmd/vigil of this module into out.
func buildVigil(out string) (string, error) {
	mod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(mod)))
	cmd := exec.Command("go", "build", "-o", out, "./cmd/vigil")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build vigil: %w\n%s", err, b)
	}
	return out, nil
}

// shimTestParent starts the sandbox described by doc with this process's
// stdin and stdout and blocks until it is killed.
func shimTestParent(doc string) int {
	var spec SandboxSpec
	if err := json.Unmarshal([]byte(doc), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cmd, send, err := Command(os.Getenv("VIGIL_SHIM_TEST_BIN"), spec)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	go send()
	select {}
}

func requireShim(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox shim needs root (namespaces, mounts)")
	}
	if shimBuildErr != nil {
		t.Fatal(shimBuildErr)
	}
}

func py(code string, args ...string) []string {
	return append([]string{python, "-c", code}, args...)
}

type shimResult struct {
	stdout, stderr string
	code           int
	st             ShimStatus
}

// runShim runs spec to its end, with a 30 s bound.
func runShimSpec(t *testing.T, spec SandboxSpec) shimResult {
	t.Helper()
	requireShim(t)
	cmd, send, err := Command(shimBin, spec)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		send()
		t.Fatal(err)
	}
	stc := make(chan ShimStatus, 1)
	go func() { stc <- send() }()
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	werr := cmd.Wait()
	var ee *exec.ExitError
	if werr != nil && !errors.As(werr, &ee) {
		t.Fatal(werr)
	}
	r := shimResult{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode(), st: <-stc}
	t.Logf("exit %d, status %+v\nstdout: %s\nstderr: %s", r.code, r.st, r.stdout, r.stderr)
	return r
}

// mustSucceed fails unless the script ran and exited 0.
func (r shimResult) mustSucceed(t *testing.T) {
	t.Helper()
	if r.code != 0 || r.st.Error != "" || r.st.Started == nil {
		t.Fatalf("run failed: exit %d, status %+v, stderr %s", r.code, r.st, r.stderr)
	}
}

// jsonOut decodes the script's stdout.
func (r shimResult) jsonOut(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("script output %q: %v", r.stdout, err)
	}
}

func nobody(t *testing.T) (int, int) {
	t.Helper()
	uid, gid, err := SandboxUser()
	if err != nil {
		t.Fatal(err)
	}
	return uid, gid
}

// hostDir makes a directory that the sandbox does not replace (unlike
// /tmp and /var/tmp), removed after the test.
func hostDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", "vigil-shim-test-")
	if err != nil {
		t.Skipf("no host directory outside /tmp: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func randHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// procsWith lists host pids whose command line contains marker.
func procsWith(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(b, []byte(marker)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone fails unless no process with marker is left within 2 s.
func waitGone(t *testing.T, marker string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := procsWith(marker)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of the run still alive after 2s: %v", pids)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShimHello(t *testing.T) {
	before := time.Now()
	r := runShimSpec(t, SandboxSpec{Argv: py(`import sys; print("hi", sys.argv)`, "x"), UID: -1, GID: -1})
	after := time.Now()
	r.mustSucceed(t)
	if r.stdout != "hi ['-c', 'x']\n" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if s := *r.st.Started; s.Before(before) || s.After(after) {
		t.Errorf("started %v is not between %v and %v", s, before, after)
	}
	t.Logf("command to script start: %v", r.st.Started.Sub(before))
}

func TestShimNoLeaks(t *testing.T) {
	requireShim(t)
	// A descriptor without close-on-exec, as vigil might inherit one: Go
	// passes it on to the shim, which must keep it from the script.
	fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	r := runShimSpec(t, SandboxSpec{
		Argv: py(`
import os
print(sorted(int(f) for f in os.listdir("/proc/self/fd")))
print(sorted(k for k in os.environ if k != "LC_CTYPE"))`),
		Env: []string{"A=b"},
		UID: -1, GID: -1,
	})
	r.mustSucceed(t)
	// 3 is listdir's own descriptor.
	if want := "[0, 1, 2, 3]\n['A']\n"; r.stdout != want {
		t.Errorf("the script has descriptors or variables it should not have: %q, want %q (leaked: fd %d)", r.stdout, want, fd)
	}
}

// sleeperScript prints its pid and /proc, leaves behind a setsid
// double-forked sleeper whose command line holds sys.argv[1], says "ready"
// once the sleeper runs, and exits when stdin closes.
const sleeperScript = `
import os, sys, time
marker = sys.argv[1]
print("pid", os.getpid(), flush=True)
print("procs", " ".join(p for p in sorted(os.listdir("/proc"), key=lambda p: p.zfill(9)) if p.isdigit()), flush=True)
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(1000)", marker])
    os._exit(0)
os.close(w)
pid = int(os.read(r, 32))
while marker.encode() not in open("/proc/%d/cmdline" % pid, "rb").read():
    time.sleep(0.01)
print("ready", flush=True)
sys.stdin.read()
`

// startSleeper starts sleeperScript through start and returns its first
// lines once it is ready; the host sees the marker.
func startSleeper(t *testing.T, stdout io.Reader, marker string) map[string]string {
	t.Helper()
	lines := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		lines[k] = v
		if k == "ready" {
			break
		}
	}
	if _, ok := lines["ready"]; !ok {
		t.Fatalf("script did not get ready: %v %v", lines, sc.Err())
	}
	if len(procsWith(marker)) == 0 {
		t.Fatal("the host does not see the sleeper: the scan proves nothing")
	}
	return lines
}

// stdinPipe returns a pipe for a child's stdin that, unlike
// exec.Cmd.StdinPipe, stays open after Wait until the test ends.
func stdinPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// startSandbox starts spec with pipes for stdin and stdout.
func startSandbox(t *testing.T, spec SandboxSpec) (*exec.Cmd, io.WriteCloser, io.Reader, chan ShimStatus) {
	t.Helper()
	requireShim(t)
	cmd, send, err := Command(shimBin, spec)
	if err != nil {
		t.Fatal(err)
	}
	var stdin *os.File
	cmd.Stdin, stdin = stdinPipe(t)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		send()
		t.Fatal(err)
	}
	stc := make(chan ShimStatus, 1)
	go func() { stc <- send() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, stdin, stdout, stc
}

func TestShimPidNamespace(t *testing.T) {
	marker := "vigil-shim-test-" + randHex(t)
	cmd, stdin, stdout, stc := startSandbox(t, SandboxSpec{Argv: py(sleeperScript, marker), UID: -1, GID: -1})
	lines := startSleeper(t, stdout, marker)
	// The shim is 1; its runtime's threads take the next few pids.
	if pid, err := strconv.Atoi(lines["pid"]); err != nil || pid < 2 || pid > 32 {
		t.Errorf("script pid = %s, want a low one", lines["pid"])
	}
	if want := "1 " + lines["pid"]; lines["procs"] != want {
		t.Errorf("/proc shows %q, want only the shim and the script: %q", lines["procs"], want)
	}
	stdin.Close()
	io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, marker)
	if st := <-stc; st.Orphans != 1 {
		t.Errorf("orphans = %d, want 1 (the sleeper)", st.Orphans)
	}
}

func TestShimKillShim(t *testing.T) {
	marker := "vigil-shim-test-" + randHex(t)
	cmd, _, stdout, _ := startSandbox(t, SandboxSpec{Argv: py(sleeperScript, marker), UID: -1, GID: -1})
	startSleeper(t, stdout, marker)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	waitGone(t, marker)
}

func TestShimParentDeath(t *testing.T) {
	requireShim(t)
	marker := "vigil-shim-test-" + randHex(t)
	// As nobody with rlimits: the shim borrows the script's ids to set
	// them, which must not cost it its parent-death signal.
	uid, gid := nobody(t)
	doc, _ := json.Marshal(SandboxSpec{
		Argv: py(sleeperScript, marker), UID: uid, GID: gid, NoNewPrivs: true,
		Rlimits: []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 64, Max: 64}},
	})
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), shimParentEnv+"="+string(doc), "VIGIL_SHIM_TEST_BIN="+shimBin)
	parent.Stderr = os.Stderr
	// The script would exit when its stdin closes: keep it open.
	parent.Stdin, _ = stdinPipe(t)
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	startSleeper(t, stdout, marker)
	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	waitGone(t, marker)
}

func TestShimSignals(t *testing.T) {
	// SIGTERM to the shim reaches the script.
	cmd, _, stdout, stc := startSandbox(t, SandboxSpec{Argv: py(`
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: sys.exit(7))
print("ready", flush=True)
time.sleep(30)
`), UID: -1, GID: -1})
	if l, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || l != "ready\n" {
		t.Fatalf("%q %v", l, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Errorf("exit code %d, want 7 from the script's handler", code)
	}
	if st := <-stc; st.Error != "" || st.Started == nil {
		t.Errorf("status %+v", st)
	}

	// A script killed by a signal: 128+n.
	r := runShimSpec(t, SandboxSpec{Argv: py(`import os; os.kill(os.getpid(), 9)`), UID: -1, GID: -1})
	if r.code != 128+9 || r.st.Error != "" {
		t.Errorf("exit %d status %+v, want 137", r.code, r.st)
	}
}

func TestShimStopDuringSetup(t *testing.T) {
	requireShim(t)
	if runtime.GOARCH != "amd64" {
		t.Skip("waitReading knows the read syscall number of amd64 only")
	}
	marker := filepath.Join(hostDir(t), "ran")
	cmd, send, err := Command(shimBin, SandboxSpec{Argv: py(`import sys; open(sys.argv[1], "w").close()`, marker), UID: -1, GID: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		send()
		t.Fatal(err)
	}
	// Once the shim waits for its spec it handles SIGTERM. (Before its
	// runtime is up, a SIGTERM to a pid namespace's init is dropped.)
	waitReading(t, cmd.Process.Pid, specFD)
	cmd.Process.Signal(syscall.SIGTERM)
	st := send()
	werr := cmd.Wait()
	t.Logf("wait: %v, status %+v", werr, st)
	if st.Error != "" || cmd.ProcessState.ExitCode() != 128+15 {
		t.Errorf("exit %v, status %+v: want 143 and no sandbox error", werr, st)
	}
	if st.Started == nil {
		if _, err := os.Stat(marker); err == nil {
			t.Error("the script ran")
		}
	} else {
		t.Log("the signal reached the shim only after the script started; it was forwarded")
	}
}

// waitReading waits until a thread of pid blocks in read(fd).
func waitReading(t *testing.T, pid, fd int) {
	t.Helper()
	want := fmt.Sprintf("0 %#x ", fd) // read(2) is syscall 0 on amd64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, p := range tasks {
			if b, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(b), want) {
				return
			}
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("process %d never blocked reading fd %d", pid, fd)
}

func TestShimMounts(t *testing.T) {
	requireShim(t)
	uid, gid := nobody(t)
	data := hostDir(t)
	if err := os.WriteFile(filepath.Join(data, "admin.token"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(data, "script.py")
	other := hostDir(t)
	lone := filepath.Join(other, "lone.token")
	if err := os.WriteFile(lone, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := "vigil-shim-probe-" + randHex(t)
	src := `
import errno, json, os, sys
data, lone, probe = sys.argv[1:4]
out = {"listing": sorted(os.listdir(data)), "uid": os.getuid(), "groups": os.getgroups(), "run": sorted(os.listdir("/run"))}
def attempt(name, fn):
    try:
        fn()
        out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
attempt("read_token", lambda: open(data + "/admin.token").read())
attempt("read_lone", lambda: open(lone).read())
attempt("write_etc", lambda: open("/etc/" + probe, "w"))
attempt("write_usr", lambda: open("/usr/" + probe, "w"))
attempt("write_data", lambda: open(data + "/" + probe, "w"))
attempt("write_self", lambda: open(__file__, "a"))
attempt("write_tmp", lambda: open("/tmp/" + probe, "w").write("x"))
attempt("write_var_tmp", lambda: open("/var/tmp/" + probe + ".2", "w").write("x"))
attempt("write_dev_shm", lambda: open("/dev/shm/" + probe + ".3", "w").write("x"))
out["tmp"] = sorted(os.listdir("/tmp"))
out["script_ro"] = bool(os.statvfs(__file__).f_flag & os.ST_RDONLY)
print(json.dumps(out))
`
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, uid, gid int) map[string]any {
		t.Helper()
		r := runShimSpec(t, SandboxSpec{
			Argv:     []string{python, script, data, lone, probe},
			UID:      uid,
			GID:      gid,
			Hide:     []string{data, lone},
			ReadOnly: []string{script},
		})
		r.mustSucceed(t)
		var out map[string]any
		r.jsonOut(t, &out)
		for _, p := range []string{"/tmp/" + probe, "/var/tmp/" + probe + ".2", "/dev/shm/" + probe + ".3", "/etc/" + probe, "/usr/" + probe} {
			if _, err := os.Stat(p); err == nil {
				os.Remove(p)
				// The root file system is not read-only: root can write it.
				if uid != -1 || !strings.HasPrefix(p, "/etc/") && !strings.HasPrefix(p, "/usr/") {
					t.Errorf("the script wrote %s on the host", p)
				}
			}
		}
		return out
	}
	want := func(t *testing.T, out map[string]any, key string, v any) {
		t.Helper()
		if got := fmt.Sprint(out[key]); got != fmt.Sprint(v) {
			t.Errorf("%s = %s, want %v", key, got, v)
		}
	}

	t.Run("nobody", func(t *testing.T) {
		out := run(t, uid, gid)
		want(t, out, "uid", uid)
		want(t, out, "groups", "[]")
		want(t, out, "listing", "[script.py]") // only the read-only script's mount point
		want(t, out, "read_token", "ENOENT")
		want(t, out, "read_lone", "EACCES")
		want(t, out, "write_etc", "EACCES")
		want(t, out, "write_usr", "EACCES")
		want(t, out, "write_data", "EROFS")
		want(t, out, "write_self", "EACCES")
		want(t, out, "write_tmp", "ok")
		want(t, out, "write_var_tmp", "ok")
		want(t, out, "write_dev_shm", "ok")
		want(t, out, "tmp", fmt.Sprintf("[%s %s.2 %s.3]", probe, probe, probe))
		want(t, out, "run", "[]")
		want(t, out, "script_ro", true)
	})
	t.Run("root", func(t *testing.T) {
		// Root passes permission checks: what stops it is read-only mounts.
		out := run(t, -1, -1)
		want(t, out, "read_token", "ENOENT")
		want(t, out, "read_lone", "EACCES")
		want(t, out, "write_data", "EROFS")
		want(t, out, "write_self", "EROFS")
		want(t, out, "write_tmp", "ok")
	})
	if b, err := os.ReadFile(filepath.Join(data, "admin.token")); err != nil || string(b) != "secret" {
		t.Errorf("host token changed: %q %v", b, err)
	}
}

func TestShimBinds(t *testing.T) {
	requireShim(t)
	uid, gid := nobody(t)
	dir := t.TempDir() // under /tmp: the shim must open it before /tmp is replaced
	script := filepath.Join(dir, "controlscript.py")
	os.WriteFile(script, []byte(`
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect("/run/vigil/api.sock")
s.sendall(b"GET /api/v1/ping HTTP/1.0\r\nHost: vigil\r\n\r\n")
resp = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    resp += b
print(resp.decode().split("\r\n\r\n", 1)[1])
import os
print(sorted(os.listdir("/run/vigil")))
`), 0o644)
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(sock, 0o666)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pong %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()

	r := runShimSpec(t, SandboxSpec{
		Argv:       []string{python, "/run/vigil/controlscript.py"},
		UID:        uid,
		GID:        gid,
		Binds:      []Bind{{Source: script, Target: "/run/vigil/controlscript.py", ReadOnly: true}},
		BindSocket: sock,
	})
	r.mustSucceed(t)
	if want := "pong /api/v1/ping\n['api.sock', 'controlscript.py']\n"; r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
}

func TestShimNetwork(t *testing.T) {
	requireShim(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	src := `
import errno, socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
    print("connected")
except OSError as e:
    print("failed", errno.errorcode.get(e.errno, e))
print(socket.gethostname())
`
	for _, network := range []bool{false, true} {
		t.Run(fmt.Sprintf("network=%v", network), func(t *testing.T) {
			r := runShimSpec(t, SandboxSpec{Argv: py(src, port), UID: -1, GID: -1, Network: network})
			r.mustSucceed(t)
			want := "failed ECONNREFUSED\n" // loopback is up, but it is the sandbox's own
			if network {
				want = "connected\n"
			}
			if want += "vigil-sandbox\n"; r.stdout != want {
				t.Errorf("stdout = %q, want %q", r.stdout, want)
			}
		})
	}
}

func TestShimRlimits(t *testing.T) {
	requireShim(t)
	uid, gid := nobody(t)
	r := runShimSpec(t, SandboxSpec{
		Argv: py(`
import errno, json, resource
out = {"nofile": resource.getrlimit(resource.RLIMIT_NOFILE), "as": resource.getrlimit(resource.RLIMIT_AS)}
files = []
try:
    for i in range(100):
        files.append(open("/dev/null"))
    out["open"] = "all 100"
except OSError as e:
    out["open"] = errno.errorcode[e.errno]
for f in files:
    f.close()
try:
    b = bytearray(1 << 30)
    out["alloc"] = "1 GiB"
except MemoryError:
    out["alloc"] = "MemoryError"
print(json.dumps(out))
`),
		UID: uid,
		GID: gid,
		Rlimits: []Rlimit{
			{Resource: unix.RLIMIT_NOFILE, Cur: 64, Max: 64},
			{Resource: unix.RLIMIT_AS, Cur: 256 << 20, Max: 256 << 20},
		},
	})
	r.mustSucceed(t)
	var out struct {
		Nofile, AS  []uint64
		Open, Alloc string
	}
	r.jsonOut(t, &out)
	if fmt.Sprint(out.Nofile) != "[64 64]" || fmt.Sprint(out.AS) != fmt.Sprint([]uint64{256 << 20, 256 << 20}) {
		t.Errorf("limits in the script: nofile %v as %v", out.Nofile, out.AS)
	}
	if out.Open != "EMFILE" {
		t.Errorf("opening 100 files: %s, want EMFILE", out.Open)
	}
	if out.Alloc != "MemoryError" {
		t.Errorf("allocating 1 GiB: %s, want MemoryError", out.Alloc)
	}
}

func TestShimNoNewPrivs(t *testing.T) {
	uid, gid := nobody(t)
	src := `
import os
for l in open("/proc/self/status"):
    if l.startswith(("NoNewPrivs", "Uid", "Gid", "Groups")):
        print(" ".join(l.split()))
`
	r := runShimSpec(t, SandboxSpec{Argv: py(src), UID: uid, GID: gid, NoNewPrivs: true})
	r.mustSucceed(t)
	want := fmt.Sprintf("Uid: %[1]d %[1]d %[1]d %[1]d\nGid: %[2]d %[2]d %[2]d %[2]d\nGroups:\nNoNewPrivs: 1\n", uid, gid)
	if r.stdout != want {
		t.Errorf("stdout = %q, want %q", r.stdout, want)
	}
	r = runShimSpec(t, SandboxSpec{Argv: py(src), UID: uid, GID: gid})
	if !strings.Contains(r.stdout, "NoNewPrivs: 0") {
		t.Errorf("without NoNewPrivs: %q", r.stdout)
	}
}

func TestShimCgroupJoin(t *testing.T) {
	requireShim(t)
	root := "/sys/fs/cgroup/pids"
	if _, err := os.Stat(filepath.Join(root, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v1 pids hierarchy: %v", err)
	}
	name := "vigil-shim-test-" + randHex(t)
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cannot remove %s", dir)
	})
	r := runShimSpec(t, SandboxSpec{
		Argv:        py(`print(open("/proc/self/cgroup").read())`),
		UID:         -1,
		GID:         -1,
		CgroupProcs: []string{filepath.Join(dir, "cgroup.procs")},
	})
	r.mustSucceed(t)
	if !strings.Contains(r.stdout, ":pids:/"+name+"\n") {
		t.Errorf("the script is not in %s:\n%s", dir, r.stdout)
	}
}

func TestShimFailClosed(t *testing.T) {
	requireShim(t)
	dir := hostDir(t)
	marker := filepath.Join(dir, "ran")
	touch := py(`import sys; open(sys.argv[1], "w").close()`, marker)
	notSock := filepath.Join(dir, "not-a-socket")
	os.WriteFile(notSock, nil, 0o644)
	missing := "/sys/fs/cgroup/pids/vigil-shim-missing-" + randHex(t)

	// The control: the same script without the bad step runs and leaves
	// its marker.
	r := runShimSpec(t, SandboxSpec{Argv: touch, UID: -1, GID: -1})
	r.mustSucceed(t)
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the control run left no marker: %v", err)
	}
	os.Remove(marker)

	for _, tc := range []struct {
		name string
		spec SandboxSpec
		want string
	}{
		{"cgroup", SandboxSpec{CgroupProcs: []string{missing + "/cgroup.procs"}}, "join cgroup " + missing + "/cgroup.procs"},
		{"hide", SandboxSpec{Hide: []string{dir + "/nope"}}, "hide " + dir + "/nope"},
		{"read_only", SandboxSpec{ReadOnly: []string{dir + "/nope"}}, "bind " + dir + "/nope"},
		{"bind_socket", SandboxSpec{BindSocket: notSock}, "not a unix socket"},
		{"bind_target_on_host", SandboxSpec{Binds: []Bind{{Source: notSock, Target: "/etc/vigil-shim-nope/x"}}}, "is not a sandbox tmpfs"},
		{"exec", SandboxSpec{Argv: []string{"/nonexistent/python3"}}, "start /nonexistent/python3"},
		{"dir", SandboxSpec{Dir: "/nonexistent"}, "in /nonexistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.UID, spec.GID = -1, -1
			if spec.Argv == nil {
				spec.Argv = touch
			}
			r := runShimSpec(t, spec)
			if r.code != ShimExitCode || !strings.Contains(r.st.Error, tc.want) || r.st.Started != nil {
				t.Errorf("exit %d, status %+v; want %d and an error with %q", r.code, r.st, ShimExitCode, tc.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the script ran")
				os.Remove(marker)
			}
		})
	}
	if _, err := os.Stat("/etc/vigil-shim-nope"); err == nil {
		t.Error("the shim created a directory on the host")
	}
}

func TestShimSpecValidation(t *testing.T) {
	ok := SandboxSpec{Argv: []string{python}, UID: -1, GID: -1}
	for _, tc := range []struct {
		mutate func(*SandboxSpec)
		want   string
	}{
		{func(s *SandboxSpec) { s.Argv = nil }, "argv"},
		{func(s *SandboxSpec) { s.Env = []string{"NOEQUALS"} }, "env[0]"},
		{func(s *SandboxSpec) { s.Dir = "rel" }, "dir"},
		{func(s *SandboxSpec) { s.UID = -2 }, "uid"},
		{func(s *SandboxSpec) { s.Rlimits = []Rlimit{{Resource: unix.RLIMIT_AS, Cur: 2, Max: 1}} }, "rlimits[0]"},
		{func(s *SandboxSpec) { s.Rlimits = []Rlimit{{Resource: 99}} }, "rlimits[0].resource"},
		{func(s *SandboxSpec) { s.TmpSize = -1 }, "tmp_size"},
		{func(s *SandboxSpec) { s.CgroupProcs = []string{"x"} }, "cgroup_procs[0]"},
		{func(s *SandboxSpec) { s.Hide = []string{"/"} }, "hide[0]"},
		{func(s *SandboxSpec) { s.ReadOnly = []string{"a/b"} }, "read_only[0]"},
		{func(s *SandboxSpec) { s.Binds = []Bind{{Source: "/a", Target: "b"}} }, "binds[0].target"},
		{func(s *SandboxSpec) { s.BindSocket = "sock" }, "bind_socket"},
	} {
		spec := ok
		tc.mutate(&spec)
		_, _, err := Command("/bin/true", spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v", tc.want, err)
		}
	}
	// The caller's spec is not changed.
	spec := SandboxSpec{Argv: []string{python}, Hide: []string{"/a/../b/"}}
	if _, _, err := Command("/bin/true", spec); err != nil {
		t.Fatal(err)
	}
	if spec.Hide[0] != "/a/../b/" || spec.Dir != "" || spec.TmpSize != 0 {
		t.Errorf("Command changed the spec: %+v", spec)
	}
}

func TestShimSandboxUser(t *testing.T) {
	uid, gid, err := SandboxUser()
	if err != nil {
		t.Fatal(err)
	}
	if uid <= 0 || gid <= 0 {
		t.Errorf("SandboxUser() = %d, %d", uid, gid)
	}
}

// BenchmarkShimStart runs /bin/true through the shim, limits and all.
func BenchmarkShimStart(b *testing.B) {
	if os.Geteuid() != 0 || shimBuildErr != nil {
		b.Skip("needs root and the vigil binary")
	}
	uid, gid, _ := SandboxUser()
	spec := SandboxSpec{
		Argv: []string{"/bin/true"}, UID: uid, GID: gid, NoNewPrivs: true, Hide: []string{"/var/lib"},
		Rlimits: []Rlimit{{Resource: unix.RLIMIT_NOFILE, Cur: 64, Max: 64}, {Resource: unix.RLIMIT_AS, Cur: 256 << 20, Max: 256 << 20}},
	}
	var startup time.Duration
	for b.Loop() {
		cmd, send, err := Command(shimBin, spec)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			send()
			b.Fatal(err)
		}
		st := send()
		if err := cmd.Wait(); err != nil || st.Started == nil {
			b.Fatal(err, st)
		}
		startup += st.Started.Sub(t0)
	}
	b.ReportMetric(float64(startup.Microseconds())/float64(b.N), "µs-to-start/op")
}
