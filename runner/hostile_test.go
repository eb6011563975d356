//go:build linux

package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hostile ControlScripts: each one tries to hurt the host or the runner,
// and each must end in a known status, leave no process and no cgroup
// behind, and leave the runner healthy. The table is the user-facing
// "Hostile scripts" table of docs/controlscripts.md; keep them in step.

// hostileCase is one hostile script and what it must end in.
type hostileCase struct {
	name string
	// source is the script; a comment naming the case is put first.
	source string
	// spec is the rest of the ControlScript spec as JSON members, e.g.
	// `"timeout": "2s", "limits": {"pids": 16}`.
	spec string
	// env is passed as spec.env (the case's parameters: paths, ports).
	env map[string]string
	// want is the final status.
	want string
	// maxTime bounds Submit to final; zero means no bound beyond Wait's.
	maxTime time.Duration
	// check looks at the record once it is final.
	check func(t *testing.T, ex *Execution)
	// skip, when set, is why the case cannot run here.
	skip string
}

// hostileTermGrace is the runner's SIGTERM grace in this test, short so
// that the script that ignores SIGTERM is killed quickly.
const hostileTermGrace = 500 * time.Millisecond

// TestHostileScripts runs every hostile case with the warm pool off (each
// run in a fresh interpreter) and on (each run forked by the fork server).
func TestHostileScripts(t *testing.T) {
	t.Run("cold", func(t *testing.T) { testHostile(t, false) })
	t.Run("warm", func(t *testing.T) { testHostile(t, true) })
}

func testHostile(t *testing.T, warm bool) {
	// The data directory the runner hides, outside /tmp (the sandbox's
	// private /tmp would hide it anyway), with world-readable files: only
	// the sandbox's hiding, not the sandbox user's permissions, keeps the
	// script from reading them.
	outside := hostDir(t)
	dataDir := filepath.Join(outside, "data")
	const tokenSecret, streamSecret, controlText = "vgl_hostile_admin_token", "hostile-jetstream-bytes", "control-readable"
	for _, d := range []string{outside, dataDir, filepath.Join(dataDir, "jetstream")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, content := range map[string]string{
		filepath.Join(dataDir, "admin.token"):           tokenSecret,
		filepath.Join(dataDir, "jetstream", "meta.inf"): streamSecret,
		filepath.Join(outside, "control.txt"):           controlText, // beside the data dir: readable
	} {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	parent := fmt.Sprintf("vigil-test-%d-hostile-%v", os.Getpid(), warm)
	h := newHarness(t, func(o *Options) {
		o.DataDir = dataDir
		o.TermGrace = hostileTermGrace
		o.CgroupParent = parent
		o.NoWarmPool = !warm
	})
	if h.r.cgroups == nil {
		t.Skip("no cgroups here: the hostile cases test cgroup limits")
	}
	if warm {
		h.waitWarm(t)
	}
	cgAvail := h.r.cgroups.Available()
	t.Logf("cgroups: %s", h.r.cgroups)

	// Listeners on the host that the network cases connect to.
	hostIP := hostileHostIP()
	netOff, offConns := hostileListener(t)
	netOn, onConns := hostileListener(t)
	targets := func(port int) string {
		l := []string{"127.0.0.1:" + strconv.Itoa(port)}
		if hostIP != "" {
			l = append(l, net.JoinHostPort(hostIP, strconv.Itoa(port)))
		}
		b, _ := json.Marshal(l)
		return string(b)
	}

	// Paths the write case tries; none may appear on the host.
	tag := randHex(t)
	writeTargets := []string{
		"/etc/vigil-hostile-" + tag, "/usr/vigil-hostile-" + tag, "/root/vigil-hostile-" + tag,
		"/vigil-hostile-" + tag, "/var/lib/vigil-hostile-" + tag, "/run/vigil-hostile-" + tag,
		"/run/lock/vigil-hostile-" + tag, "/run/vigil/controlscript.py",
		filepath.Join(outside, "vigil-hostile-"+tag), filepath.Join(dataDir, "vigil-hostile-"+tag),
		filepath.Join(h.r.opts.RunDir, "vigil-hostile-"+tag),
	}
	// Writable inside, but only into the run's private /tmp.
	privateTargets := []string{"/tmp/vigil-hostile-" + tag, "/var/tmp/vigil-hostile-" + tag, "/dev/shm/vigil-hostile-" + tag}
	jsonList := func(l ...[]string) string {
		var all []string
		for _, x := range l {
			all = append(all, x...)
		}
		b, _ := json.Marshal(all)
		return string(b)
	}

	memoryErrorWant := StatusSucceeded
	if b, err := os.ReadFile("/proc/sys/vm/overcommit_memory"); err == nil && strings.TrimSpace(string(b)) == "1" {
		// Always overcommit: the 2 TiB mapping is granted and memset
		// runs into limits.memory instead.
		memoryErrorWant = StatusOOM
	}

	cases := []hostileCase{{
		// Every process keeps forking; pids.max refuses the forks
		// (EAGAIN), the bomb keeps trying until the timeout, then
		// SIGTERM ends the script and its pid namespace dies with the
		// shim.
		name: "fork-bomb",
		source: `import os
me = os.getpid()
told = False
while True:
    try:
        os.fork()
    except OSError as e:
        if os.getpid() == me and not told:
            print("fork refused:", os.strerror(e.errno), flush=True)
            told = True
`,
		spec: `"timeout": "5s", "limits": {"pids": 16}`,
		want: StatusTimeout,
		skip: hostileNeed(cgAvail, LimitPids),
		check: func(t *testing.T, ex *Execution) {
			if !strings.Contains(ex.Stdout, "fork refused") {
				t.Errorf("the bomb never hit limits.pids: stdout %q", ex.Stdout)
			}
			// The shim is outside the run's cgroups: pids.max never
			// keeps its Go runtime from making a thread (it used to
			// crash with "pthread_create failed" on stderr).
			if ex.Stderr != "" || ex.Signal != "SIGTERM" {
				t.Errorf("signal %q, stderr %q; want SIGTERM and a quiet shim", ex.Signal, tail(ex.Stderr, 300))
			}
			if ex.KilledDescendants < 1 {
				t.Errorf("killed_descendants = %d, want the bomb's processes counted", ex.KilledDescendants)
			}
		},
	}, {
		// bytearray(2 GiB) zero-fills (touches) every page at once; the
		// cgroup's OOM killer ends it at 64 MiB.
		name: "allocate-2GiB",
		source: `b = bytearray(2 << 30)
for i in range(0, len(b), 4096):
    b[i] = 1
print("allocated 2 GiB")
`,
		spec: `"timeout": "20s", "limits": {"memory": "64Mi"}`,
		want: StatusOOM,
		skip: hostileNeed(cgAvail, LimitMemory),
		check: func(t *testing.T, ex *Execution) {
			if strings.Contains(ex.Stdout, "allocated") {
				t.Errorf("the allocation went through: %q", ex.Stdout)
			}
			if ex.Signal != "SIGKILL" {
				t.Errorf("signal %q, want SIGKILL from the OOM killer", ex.Signal)
			}
			if ex.PeakMemory > 80<<20 {
				t.Errorf("peak memory %d is above the 64 MiB limit", ex.PeakMemory)
			}
		},
	}, {
		// One allocation larger than RAM is refused outright (heuristic
		// overcommit); the script sees MemoryError and carries on.
		name: "allocate-2TiB-memoryerror",
		source: `try:
    b = bytearray(2 << 40)
    print("allocated")
except MemoryError:
    print("MemoryError")
`,
		spec: `"timeout": "20s", "limits": {"memory": "64Mi"}`,
		want: memoryErrorWant,
		skip: hostileNeed(cgAvail, LimitMemory),
		check: func(t *testing.T, ex *Execution) {
			if memoryErrorWant == StatusSucceeded && ex.Stdout != "MemoryError\n" {
				t.Errorf("stdout %q, want MemoryError", ex.Stdout)
			}
		},
	}, {
		name:    "spin-past-timeout",
		source:  "while True:\n    pass\n",
		spec:    `"timeout": "2s"`,
		want:    StatusTimeout,
		maxTime: 15 * time.Second,
	}, {
		// 1 GiB on stdout: vigil keeps 64 KiB and reads and drops the
		// rest, so the script is never blocked on a full pipe.
		name: "print-1GiB",
		source: `import sys
chunk = b"x" * (1 << 20)
for _ in range(1024):
    sys.stdout.buffer.write(chunk)
sys.stdout.buffer.flush()
print("done", file=sys.stderr)
`,
		spec:    `"timeout": "20s", "limits": {"output": "64Ki"}`,
		want:    StatusSucceeded,
		maxTime: 15 * time.Second,
		check: func(t *testing.T, ex *Execution) {
			if !ex.StdoutTruncated || !strings.Contains(ex.Stdout, fmt.Sprintf("[vigil: output truncated: %d more bytes not kept]", 1<<30-64<<10)) {
				t.Errorf("no truncation marker: truncated=%v tail %q", ex.StdoutTruncated, tail(ex.Stdout, 100))
			}
			if ex.Stderr != "done\n" {
				t.Errorf("stderr %q", ex.Stderr)
			}
			rec, _ := json.Marshal(ex)
			if len(rec) >= 1<<20 || len(ex.Stdout) > 64<<10+100 {
				t.Errorf("record is %d bytes, stdout %d", len(rec), len(ex.Stdout))
			}
		},
	}, {
		// A daemon: setsid and a double fork, so the grandchild is in no
		// process group or session of the script; it still holds stdout.
		// It dies with the shim, pid 1 of the run's pid namespace.
		name: "setsid-double-fork",
		source: `import os, time
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        os.write(w, b"up")
        os.close(w)
        time.sleep(1000)
        os._exit(0)
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
print("grandchild", os.read(r, 2).decode(), flush=True)
`,
		spec:    `"timeout": "20s"`,
		want:    StatusSucceeded,
		maxTime: 10 * time.Second,
		check: func(t *testing.T, ex *Execution) {
			if ex.Stdout != "grandchild up\n" {
				t.Errorf("stdout %q", ex.Stdout)
			}
			if ex.KilledDescendants < 1 {
				t.Errorf("killed_descendants = %d, want the grandchild counted", ex.KilledDescendants)
			}
		},
	}, {
		// The runner's data directory (admin token, JetStream files) is
		// hidden under an empty tmpfs; the harness's real one is under
		// /tmp, which is private. The shim (pid 1, root) is off limits.
		name: "read-secrets",
		source: `import errno, json, os
out = {}
for p in json.loads(os.environ["TARGETS"]):
    try:
        if os.path.isdir(p):
            out[p] = "listed:" + ",".join(sorted(os.listdir(p)))
        else:
            with open(p, "rb") as f:
                out[p] = "read:" + f.read(100).decode(errors="replace")
    except OSError as e:
        out[p] = "error:" + errno.errorcode[e.errno]
print(json.dumps(out))
`,
		env: map[string]string{"TARGETS": jsonList([]string{
			filepath.Join(dataDir, "admin.token"), filepath.Join(dataDir, "jetstream", "meta.inf"),
			filepath.Join(dataDir, "jetstream"), dataDir, filepath.Join(outside, "control.txt"),
			filepath.Join(h.data, "jetstream"), h.data, "/proc/1/environ", "/proc/1/fd",
		})},
		want: StatusSucceeded,
		check: func(t *testing.T, ex *Execution) {
			var got map[string]string
			if err := json.Unmarshal([]byte(ex.Stdout), &got); err != nil {
				t.Fatalf("stdout %q: %v", ex.Stdout, err)
			}
			t.Logf("what the script saw: %v", got)
			if v := got[filepath.Join(outside, "control.txt")]; v != "read:"+controlText {
				t.Errorf("the control file beside the data dir reads %q: the test proves nothing", v)
			}
			for p, v := range got {
				if strings.Contains(v, tokenSecret) || strings.Contains(v, streamSecret) || strings.Contains(v, "GOMAXPROCS") {
					t.Errorf("%s: the script read %q", p, v)
				}
			}
			if v := got[dataDir]; v != "listed:" {
				t.Errorf("the data dir lists %q, want empty", v)
			}
			for _, p := range []string{filepath.Join(dataDir, "admin.token"), filepath.Join(h.data, "jetstream"), "/proc/1/environ", "/proc/1/fd"} {
				if !strings.HasPrefix(got[p], "error:") {
					t.Errorf("%s: %q, want an error", p, got[p])
				}
			}
		},
	}, {
		// Writes outside /tmp fail: the sandbox user owns nothing, /run
		// is a private read-only tmpfs, the script's own file is a
		// read-only bind. /var/tmp and /dev/shm are the run's /tmp.
		name: "write-outside-tmp",
		source: `import errno, json, os
out = {}
for p in json.loads(os.environ["TARGETS"]):
    try:
        with open(p, "a") as f:
            f.write("hostile\n")
        out[p] = "ok"
    except OSError as e:
        out[p] = "error:" + errno.errorcode[e.errno]
for p in json.loads(os.environ["PRIVATE"]):
    out["in /tmp: " + os.path.basename(p)] = os.path.exists("/tmp/" + os.path.basename(p))
print(json.dumps(out))
`,
		env: map[string]string{
			"TARGETS": jsonList(writeTargets, privateTargets),
			"PRIVATE": jsonList(privateTargets),
		},
		want: StatusSucceeded,
		check: func(t *testing.T, ex *Execution) {
			var got map[string]any
			if err := json.Unmarshal([]byte(ex.Stdout), &got); err != nil {
				t.Fatalf("stdout %q: %v", ex.Stdout, err)
			}
			t.Logf("what the script got: %v", got)
			for _, p := range writeTargets {
				if v, _ := got[p].(string); !strings.HasPrefix(v, "error:") {
					t.Errorf("write %s: %v, want an error", p, got[p])
				}
			}
			for _, p := range privateTargets {
				if got[p] != "ok" || got["in /tmp: "+filepath.Base(p)] != true {
					t.Errorf("write %s: %v (in /tmp: %v), want it written to the private /tmp", p, got[p], got["in /tmp: "+filepath.Base(p)])
				}
			}
			for _, p := range slices.Concat(writeTargets, privateTargets) {
				if p == "/run/vigil/controlscript.py" {
					continue // exists only inside
				}
				if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s appeared on the host (%v)", p, err)
					os.Remove(p)
				}
			}
		},
	}, {
		// The parent is the shim: pid 1 of the run's pid namespace, root.
		// A signal from the script is refused (EPERM), and the kernel
		// ignores SIGKILL sent to a namespace's init from inside anyway.
		// kill(-1) reaches no one but the caller's own processes.
		name: "kill-parent",
		source: `import errno, json, os, signal, time
out = {"ppid": os.getppid()}
for name, pid in (("getppid", os.getppid()), ("pid1", 1), ("all", -1)):
    try:
        os.kill(pid, signal.SIGKILL)
        out[name] = "sent"
    except OSError as e:
        out[name] = errno.errorcode[e.errno]
time.sleep(0.2)
print(json.dumps(out))
`,
		spec: `"timeout": "20s"`,
		want: StatusSucceeded,
		check: func(t *testing.T, ex *Execution) {
			var got map[string]any
			if err := json.Unmarshal([]byte(ex.Stdout), &got); err != nil {
				t.Fatalf("stdout %q: %v", ex.Stdout, err)
			}
			t.Logf("kills: %v", got)
			if got["ppid"] != float64(1) || got["getppid"] != "EPERM" || got["pid1"] != "EPERM" {
				t.Errorf("kills: %v, want ppid 1 and EPERM", got)
			}
		},
	}, {
		name: "open-100k-files",
		source: `import errno, os
fds = []
try:
    for _ in range(100000):
        fds.append(os.open("/dev/null", os.O_RDONLY))
    print(len(fds), "OK")
except OSError as e:
    print(len(fds), errno.errorcode[e.errno])
`,
		spec: `"timeout": "20s", "limits": {"open_files": 256}`,
		want: StatusSucceeded,
		check: func(t *testing.T, ex *Execution) {
			t.Logf("opened: %q", ex.Stdout)
			n, code, _ := strings.Cut(strings.TrimSpace(ex.Stdout), " ")
			count, err := strconv.Atoi(n)
			if err != nil || code != "EMFILE" || count > 256 || count < 200 {
				t.Errorf("stdout %q, want EMFILE after at most 256 descriptors", ex.Stdout)
			}
		},
	}, {
		// No network namespace of the host: only a loopback of its own.
		name:   "connect-no-network",
		source: hostileConnect,
		env:    map[string]string{"TARGETS": targets(netOff)},
		spec:   `"timeout": "20s", "limits": {"network": false}`,
		want:   StatusSucceeded,
		check: func(t *testing.T, ex *Execution) {
			t.Logf("connects: %q", ex.Stdout)
			if strings.Contains(ex.Stdout, "connected") || !strings.Contains(ex.Stdout, "Error") {
				t.Errorf("stdout %q, want every connection to fail", ex.Stdout)
			}
			if n := offConns.Load(); n != 0 {
				t.Errorf("the host listener got %d connections", n)
			}
		},
	}, {
		// Sanity for the case above: with a network the same connect works.
		name:   "connect-with-network",
		source: hostileConnect,
		env:    map[string]string{"TARGETS": targets(netOn)},
		spec:   `"timeout": "20s"`,
		want:   StatusSucceeded,
		check: func(t *testing.T, ex *Execution) {
			if strings.Count(ex.Stdout, "connected") != strings.Count(targets(netOn), ":") {
				t.Errorf("stdout %q, want every connection to work", ex.Stdout)
			}
			if n := onConns.Load(); n == 0 {
				t.Errorf("the host listener got no connection")
			}
		},
	}, {
		// SIGTERM is ignored (by a child too): after the grace the whole
		// cgroup is killed.
		name: "ignore-sigterm",
		source: `import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    time.sleep(1000)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(1000)
`,
		spec: `"timeout": "2s"`,
		want: StatusTimeout,
		// Well under the timeout plus the default grace: the
		// runner's TermGrace option applies.
		maxTime: 2*time.Second + DefaultTermGrace - time.Second,
		check: func(t *testing.T, ex *Execution) {
			if ex.Stdout != "ignoring SIGTERM\n" || ex.Signal != "SIGKILL" {
				t.Errorf("stdout %q signal %q, want a SIGKILL after the grace", ex.Stdout, ex.Signal)
			}
		},
	}}

	var (
		mu      sync.Mutex
		timings = map[string]time.Duration{}
		ids     = map[string]string{}
	)
	t.Run("cases", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.skip != "" {
					t.Skip(c.skip)
				}
				t.Parallel()
				ex, took := h.runHostile(t, c)
				mu.Lock()
				timings[c.name], ids[c.name] = took, ex.ID
				mu.Unlock()
				t.Logf("%s: %s in %v (reason %q, exit %v, signal %q, cpu %d ms, peak %d, killed_descendants %d, enforcement %v)",
					c.name, ex.Status, took.Round(time.Millisecond), ex.Reason, hostileExit(ex), ex.Signal, ex.CPUTimeMS, ex.PeakMemory, ex.KilledDescendants, ex.Enforcement)
				if ex.Warm != warm {
					t.Errorf("warm %v, want %v (%s)", ex.Warm, warm, ex.Reason)
				}
				if ex.Status != c.want {
					t.Errorf("status %s (%s), want %s; stdout %q stderr %q", ex.Status, ex.Reason, c.want, tail(ex.Stdout, 300), tail(ex.Stderr, 300))
				}
				if c.maxTime > 0 && took > c.maxTime {
					t.Errorf("took %v, more than %v", took, c.maxTime)
				}
				if c.check != nil {
					c.check(t, ex)
				}
				h.assertRunGone(t, ex)
			})
		}
	})

	if warm {
		// A run's init is the fork server's child, outside the run's
		// cgroup: none may be left.
		if left := h.zygoteChildren(t); len(left) > 0 {
			t.Errorf("the fork server still has children after every run ended: %v", left)
		}
	}
	// The runner is still healthy: it answers for every run and runs a
	// trivial script.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for name, id := range ids {
		if ex, err := h.r.Get(ctx, id); err != nil || !Final(ex.Status) {
			t.Errorf("Get %s (%s): %v %+v", id, name, err, ex)
		}
	}
	h.script(t, "hostile-after", `{"source": "print('still fine')\n"}`)
	if ex := h.runWait(t, "hostile-after", ""); ex.Status != StatusSucceeded || ex.Stdout != "still fine\n" {
		t.Errorf("trivial script after the hostile ones: %s %s %q", ex.Status, ex.Reason, ex.Stdout)
	}
	names := make([]string, 0, len(timings))
	for n := range timings {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %-28s %v", n, timings[n].Round(time.Millisecond))
	}
	t.Logf("submit to final, per case:%s", b.String())
}

// hostileConnect tries each host:port in $TARGETS.
const hostileConnect = `import json, os, socket
for t in json.loads(os.environ["TARGETS"]):
    host, port = t.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, int(port)))
        print(t, "connected")
    except OSError as e:
        print(t, type(e).__name__, e)
    finally:
        s.close()
`

// runHostile stores the case's script, runs it and returns the final
// record and the time from Submit to final.
func (h *harness) runHostile(t *testing.T, c hostileCase) (*Execution, time.Duration) {
	t.Helper()
	name := "hostile-" + c.name
	spec := `{"source": ` + src("# vigil hostile case: "+c.name+"\n"+c.source)
	if c.spec != "" {
		spec += ", " + c.spec
	}
	if len(c.env) > 0 {
		b, _ := json.Marshal(c.env)
		spec += `, "env": ` + string(b)
	}
	h.script(t, name, spec+"}")
	start := time.Now()
	ex := h.runWait(t, name, "")
	return ex, time.Since(start)
}

// assertRunGone checks, once a run is final, that no host process belongs
// to it (allowing 2 s for the kernel to reap), that its cgroup directories
// and its run directory are gone, and that the runner answers for it.
func (h *harness) assertRunGone(t *testing.T, ex *Execution) {
	t.Helper()
	id := ex.ID
	if ex.Cgroup == "" && h.r.cgroups != nil {
		t.Errorf("%s: no cgroup on the record", id)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		left := hostileProcs(id)
		if ex.Cgroup != "" && ex.Cgroup != id {
			left = append(left, hostileProcs(ex.Cgroup)...)
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of %s still on the host after 2 s: %s", id, strings.Join(left, "; "))
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	dirs := []string{filepath.Join(h.r.opts.RunDir, id)}
	for _, name := range []string{id, ex.Cgroup} {
		if name == "" {
			continue
		}
		if h.r.cgroups != nil {
			for _, p := range h.r.cgroups.ParentDirs() {
				dirs = append(dirs, filepath.Join(p, name))
			}
		}
		// Every hierarchy, not only those in use.
		more, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", h.r.opts.CgroupParent, name))
		dirs = append(dirs, more...)
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", h.r.opts.CgroupParent, name))
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after the run (%v)", d, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ex, err := h.r.Get(ctx, id); err != nil || !Final(ex.Status) {
		t.Errorf("Get %s after the run: %v %+v", id, err, ex)
	}
}

// hostileProcs describes every host process that belongs to run id: its
// command line, its environment (VIGIL_EXECUTION_ID) or its cgroup names
// the id. The shim has neither the id on its command line nor in its
// environment, but sits in the run's cgroup.
func hostileProcs(id string) []string {
	ents, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		for _, f := range []string{"cmdline", "environ", "cgroup"} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil || !bytes.Contains(b, []byte(id)) {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			state := "?"
			if st, err := os.ReadFile(filepath.Join(dir, "stat")); err == nil {
				if i := bytes.LastIndexByte(st, ')'); i > 0 && i+2 < len(st) {
					state = string(st[i+2 : i+3])
				}
			}
			found = append(found, fmt.Sprintf("pid %s %s state %s (by %s)", e.Name(), strings.TrimSpace(string(comm)), state, f))
			break
		}
	}
	return found
}

// hostileListener accepts TCP connections on every IPv4 address of the
// host and counts them.
func hostileListener(t *testing.T) (int, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n := &atomic.Int64{}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, n
}

// hostileHostIP is a non-loopback IPv4 address of the host, or "".
func hostileHostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			return ipn.IP.String()
		}
	}
	return ""
}

func hostileNeed(avail map[string]string, limit string) string {
	if avail[limit] == "" {
		return "no cgroup enforces limits." + limit + " here"
	}
	return ""
}

func hostileExit(ex *Execution) string {
	if ex.ExitCode == nil {
		return "none"
	}
	return strconv.Itoa(*ex.ExitCode)
}

// TestUnenforceableLimitRejects shows the fail-closed rule: when the
// cgroup that enforces a limit cannot be set up, the run is rejected with
// the reason, and the script never runs.
func TestUnenforceableLimitRejects(t *testing.T) {
	t.Run("cold", func(t *testing.T) { testUnenforceable(t, false) })
	t.Run("warm", func(t *testing.T) { testUnenforceable(t, true) })
}

func testUnenforceable(t *testing.T, warm bool) {
	h := newHarness(t, func(o *Options) { o.NoWarmPool = !warm })
	if warm {
		h.waitWarm(t)
	}
	// The script leaves a marker on the host; the sandbox user may write
	// into this directory, outside the run's private /tmp.
	dir := hostDir(t)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "ran")
	h.script(t, "marker", `{"source": `+src(`import os
with open(os.environ["MARKER"], "w") as f:
    f.write("ran")
print("ran")
`)+`, "env": {"MARKER": `+src(marker)+`}, "timeout": "20s"}`)

	// With the real cgroups the script runs and leaves the marker: the
	// marker proves something below.
	ex := h.runWait(t, "marker", "")
	if ex.Status != StatusSucceeded {
		t.Fatalf("control run: %s %s %q", ex.Status, ex.Reason, ex.Stderr)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the control run left no marker: %v", err)
	}
	os.Remove(marker)

	realCg := h.r.cgroups
	useCgroups := func(cg *Cgroups) {
		h.r.cgroups = cg
		if warm {
			h.r.warm.useCgroups(t, cg)
		}
	}
	defer useCgroups(realCg)
	// Each case's script asks for a limit other than the default, so that
	// a warm run, whose cgroup was made with the defaults, writes it.
	specs := map[string]string{"memory.max": `"memory": "128Mi"`, "pids.max": `"pids": 32`, "cpu.max": `"cpu": 0.5`}
	for _, file := range []string{"memory.max", "pids.max", "cpu.max"} {
		t.Run(file, func(t *testing.T) {
			h.script(t, "marker", `{"source": `+src(`import os
with open(os.environ["MARKER"], "w") as f:
    f.write("ran")
print("ran")
`)+`, "env": {"MARKER": `+src(marker)+`}, "timeout": "20s", "limits": {`+specs[file]+`}}`)
			// A fake cgroup v2 tree whose kernel refuses the limit file (it
			// is a directory): Create fails there. Warm, the fork server
			// prepares the run on the tree first, and the file breaks
			// after: the run's own limit cannot be written. The tree is
			// outside /tmp, which a prepared run replaces before it joins
			// its cgroup.
			root, mountinfo := cgFakeTreeAt(t, hostDir(t), "cpu memory pids")
			fake := &cgFakeKernel{}
			if !warm {
				fake.broken = map[string]bool{file: true}
			}
			cg, err := detectCgroups(CgroupOptions{Root: root, MountInfo: mountinfo, Parent: "vigil"}, fake.fs())
			if err != nil {
				t.Fatal(err)
			}
			if len(cg.Available()) != 3 {
				t.Fatalf("the fake tree serves %v", cg.Available())
			}
			useCgroups(cg)
			if warm {
				for _, d := range h.r.warm.prepared(t, 1) {
					f := filepath.Join(d, file)
					if err := os.Remove(f); err != nil {
						t.Fatal(err)
					}
					if err := os.Mkdir(f, 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			ex := h.runWait(t, "marker", "")
			useCgroups(realCg)
			t.Logf("%s: %s", ex.Status, ex.Reason)
			name := ex.ID
			if warm {
				name = ex.Cgroup // made before the run was known
			}
			if ex.Warm != warm {
				t.Errorf("warm %v, want %v", ex.Warm, warm)
			}
			if ex.Status != StatusRejected || name == "" || !strings.Contains(ex.Reason, filepath.Join(root, "vigil", name, file)) {
				t.Errorf("status %s reason %q, want rejected naming %s", ex.Status, ex.Reason, file)
			}
			if ex.FirstLine != nil || ex.Stdout != "" || ex.ExitCode != nil {
				t.Errorf("the script started: first line %v, stdout %q", ex.FirstLine, ex.Stdout)
			}
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the script ran: marker %v", err)
				os.Remove(marker)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := os.Stat(filepath.Join(root, "vigil", name))
				if errors.Is(err, os.ErrNotExist) {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("the rejected run left its cgroup: %v", err)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if _, err := os.Stat(filepath.Join(h.r.opts.RunDir, ex.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the rejected run left its run dir: %v", err)
			}
		})
	}

	// And with the real cgroups back, runs work again.
	useCgroups(realCg)
	if ex := h.runWait(t, "marker", ""); ex.Status != StatusSucceeded {
		t.Fatalf("after: %s %s", ex.Status, ex.Reason)
	}
}
