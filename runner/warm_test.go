package runner

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigilhq/vigil/vigiltest"
)

// waitWarm waits until the default interpreter's fork server is ready.
func (h *harness) waitWarm(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for h.r.warm.get(DefaultInterpreter()) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the fork server did not become ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probeScript reports what a script can observe of how it was started.
const probeScript = `import os, sys, json, signal, socket, resource, threading, __main__
def read(p):
    try:
        with open(p) as f:
            return f.read()
    except OSError as e:
        return "error: %s" % e.strerror
status = dict(l.split(":", 1) for l in read("/proc/self/status").splitlines() if ":" in l)
env = dict(os.environ)
for k in ("API_TOKEN", "VIGIL_API_TOKEN", "VIGIL_EXECUTION_ID"):
    env[k] = bool(env.get(k))
mounts = sorted(l.split()[4] for l in read("/proc/self/mountinfo").splitlines())
print(json.dumps({
    "argv": sys.argv, "name": __name__, "file": __file__, "path": sys.path,
    "main": sorted(k for k in vars(__main__) if k.startswith("__")),
    "spec": repr(__spec__), "loader": type(__loader__).__name__, "package": __package__,
    "cached": repr(__cached__), "doc": __doc__,
    "pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0), "sid": os.getsid(0), "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()],
    "cwd": os.getcwd(), "env": env, "host": socket.gethostname(),
    "flags": list(sys.flags), "stdout": [sys.stdout.encoding, sys.stdout.line_buffering, sys.stdout.write_through, sys.stdin.name],
    "executable": sys.executable, "dont_write_bytecode": sys.dont_write_bytecode,
    "run": sorted(os.listdir("/run/vigil")), "tmp": sorted(os.listdir("/tmp")),
    "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "threads": threading.active_count(), "native_id": threading.main_thread().native_id == threading.get_native_id(), "fds": sorted(os.listdir("/proc/self/fd")),
    "signals": [str(signal.getsignal(s)) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP)],
    "rlimits": [resource.getrlimit(r) for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC, resource.RLIMIT_CORE, resource.RLIMIT_CPU, resource.RLIMIT_AS)],
    "sigmasks": [status[k].strip() for k in ("SigBlk", "SigIgn")],
    "nonewprivs": status["NoNewPrivs"].strip(), "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")],
    "cgroup": ["vigil-test" in l for l in read("/proc/self/cgroup").splitlines() if l.split(":")[1] in ("memory", "pids", "")],
    "mounts": mounts, "datadir": read("/proc/1/environ")[:5],
    "umask": os.umask(0o22), "nice": os.nice(0),
    "environ_readable": not read("/proc/self/environ").startswith("error"),
}))
`

// TestWarmRunsDrawTheirOwnRandom: runs forked from one server do not share
// the random module's state (or every run would draw the same numbers).
func TestWarmRunsDrawTheirOwnRandom(t *testing.T) {
	h := newHarness(t, nil)
	h.waitWarm(t)
	h.script(t, "draw", `{"source": `+src("import random\nprint(random.getrandbits(64))\n")+`}`)
	seen := map[string]bool{}
	for range 4 {
		ex := h.runWait(t, "draw", `{}`)
		if !ex.Warm || ex.Status != StatusSucceeded {
			t.Fatalf("run: warm=%v %s %s %q", ex.Warm, ex.Status, ex.Reason, ex.Stderr)
		}
		if seen[ex.Stdout] {
			t.Fatalf("two warm runs drew the same numbers: %q", ex.Stdout)
		}
		seen[ex.Stdout] = true
	}
}

// TestWarmRunLooksCold: a script forked by the warm pool observes what it
// would after a cold start — argv, __main__, paths, ids, environment,
// namespaces, mounts, limits, signals, descriptors — and fails, exits and
// reports errors the same way.
func TestWarmRunLooksCold(t *testing.T) {
	cold := newHarness(t, func(o *Options) { o.NoWarmPool = true })
	warm := newHarness(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil)) })
	warm.waitWarm(t)
	scripts := map[string]string{
		"probe":   probeScript,
		"raise":   "import json\n\ndef f():\n    return json.loads('{')\n\nf()\n",
		"exitmsg": "import sys\nprint('out')\nsys.exit('bye')\n",
		"exit3":   "raise SystemExit(3)\n",
		"kbint":   "print('x')\nraise KeyboardInterrupt\n",
		"del":     "import sys\nclass A:\n    def __del__(self):\n        print('del ran')\na = A()\nprint('end')\nsys.exit(True)\n",
		"exitbig": "import sys\nsys.exit(300)\n",
		"atexit": `import atexit, threading, time, sys
atexit.register(lambda: print("atexit ran"))
def late():
    time.sleep(0.2)
    print("thread done")
threading.Thread(target=late).start()
print("main done")
`,
		"unicode": "# -*- coding: latin-1 -*-\nprint('caf\xe9', end='')\n",
	}
	for name, s := range scripts {
		spec := `{"source": ` + src(s) + `, "timeout": "20s", "limits": {"memory": "512Mi", "cpu": 1}}`
		cold.script(t, name, spec)
		warm.script(t, name, spec)
	}
	for _, name := range []string{"probe", "raise", "exitmsg", "exit3", "atexit", "unicode", "kbint", "del", "exitbig"} {
		c := cold.runWait(t, name, `{"name": "n"}`)
		w := warm.runWait(t, name, `{"name": "n"}`)
		if c.Warm || !w.Warm {
			t.Fatalf("%s: cold run warm=%v, warm run warm=%v (%s)", name, c.Warm, w.Warm, w.Reason)
		}
		if c.Status != w.Status || !reflect.DeepEqual(c.ExitCode, w.ExitCode) || c.Signal != w.Signal {
			t.Errorf("%s: cold %s %v %s, warm %s %v %s (%s)", name, c.Status, deref(c.ExitCode), c.Signal, w.Status, deref(w.ExitCode), w.Signal, w.Reason)
		}
		if c.Stderr != w.Stderr {
			t.Errorf("%s: stderr\ncold %q\nwarm %q", name, c.Stderr, w.Stderr)
		}
		if name != "probe" {
			if c.Stdout != w.Stdout {
				t.Errorf("%s: stdout\ncold %q\nwarm %q", name, c.Stdout, w.Stdout)
			}
			continue
		}
		var co, wo map[string]any
		if err := json.Unmarshal([]byte(c.Stdout), &co); err != nil {
			t.Fatalf("cold probe: %v: %q %q", err, c.Stdout, c.Stderr)
		}
		if err := json.Unmarshal([]byte(w.Stdout), &wo); err != nil {
			t.Fatalf("warm probe: %v: %q %q", err, w.Stdout, w.Stderr)
		}
		for k, cv := range co {
			if k == "pid" || k == "procs" {
				// The cold run's pid follows the shim's threads.
				for _, o := range []map[string]any{co, wo} {
					if !reflect.DeepEqual(o["procs"], []any{1.0, o["pid"]}) {
						t.Errorf("probe: processes %v, pid %v", o["procs"], o["pid"])
					}
				}
				continue
			}
			if !reflect.DeepEqual(cv, wo[k]) {
				t.Errorf("probe %s:\ncold %v\nwarm %v", k, cv, wo[k])
			}
		}
		if len(co) != len(wo) || len(co) < 30 {
			t.Errorf("probe keys: cold %d, warm %d", len(co), len(wo))
		}
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// zygoteChildren lists the host pids of what the default fork server's
// runs left behind, waiting up to 2 s for them to go: its children are the
// inits of its slots, each with at most one child, a prepared run's
// script process; anything else is left over.
func (h *harness) zygoteChildren(t *testing.T) []int {
	t.Helper()
	z := h.r.warm.get(DefaultInterpreter())
	if z == nil {
		t.Fatal("no fork server")
	}
	server := vigiltest.ChildrenOf(z.cmd.Process.Pid) // the shim's one child
	if len(server) != 1 {
		t.Fatalf("the fork server's shim has children %v", server)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		p := h.r.warm
		p.mu.Lock()
		parked, inflight := 0, 0
		for k, l := range p.parked {
			parked += len(l)
			inflight += p.inflight[k]
		}
		p.mu.Unlock()
		var waiting, left []int
		for _, init := range vigiltest.ChildrenOf(server[0]) {
			kids := vigiltest.ChildrenOf(init)
			if len(kids) > 0 {
				waiting = append(waiting, kids[0])
				left = append(left, kids[1:]...)
			}
			for _, k := range kids {
				left = append(left, vigiltest.ChildrenOf(k)...)
			}
		}
		if inflight == 0 && len(waiting) == parked && len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			if len(waiting) != parked {
				left = append(left, waiting...)
			}
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWarmIsolation: what one warm run does to its interpreter, its
// environment, /tmp and its threads and processes does not reach the next
// run of the same fork server.
func TestWarmIsolation(t *testing.T) {
	h := newHarness(t, nil)
	h.waitWarm(t)
	h.script(t, "spoil", `{"source": `+src(`import builtins, json, os, subprocess, sys, threading, time, urllib.request
json.dumps = lambda *a, **k: "PATCHED"
json.decoder.JSONDecoder.decode = lambda *a, **k: "PATCHED"
builtins.vigil_marker = "spoiled"
os.environ["VIGIL_LEAK"] = "spoiled"
os.putenv("VIGIL_LEAK_PUT", "spoiled")
os.chdir("/")
os.umask(0o077)
with open("/tmp/leak", "w") as f:
    f.write("spoiled")
sys.modules["leakmod"] = type(sys)("leakmod")
sys.path.append("/tmp/leakpath")
urllib.request.install_opener(urllib.request.build_opener())
threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
subprocess.Popen(["sleep", "3600"], start_new_session=True)
builtins.sorted = lambda *a, **k: ["PATCHED"]
print("spoiled")
`)+`, "timeout": "20s"}`)
	h.script(t, "check", `{"source": `+src(`import builtins, json, os, sys, threading, urllib.request
print(json.dumps({
    "dumps": json.dumps({"a": 1}), "loads": json.loads('{"b": 2}'), "sorted": sorted([2, 1]),
    "marker": hasattr(builtins, "vigil_marker"),
    "env": [k for k in os.environ if "LEAK" in k], "cwd": os.getcwd(), "umask": os.umask(0o022),
    "tmp": os.listdir("/tmp"), "leakmod": "leakmod" in sys.modules, "leakpath": "/tmp/leakpath" in sys.path,
    "opener": urllib.request._opener is None, "threads": threading.active_count(),
    "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
}, sort_keys=True))
`)+`, "timeout": "20s"}`)
	want := `{"cwd": "/tmp", "dumps": "{\"a\": 1}", "env": [], "leakmod": false, "leakpath": false, "loads": {"b": 2}, "marker": false, "opener": true, "procs": [1, 2], "sorted": [1, 2], "threads": 1, "tmp": [], "umask": 18}` + "\n"
	for i := range 3 {
		a := h.runWait(t, "spoil", "")
		if a.Status != StatusSucceeded || a.Stdout != "spoiled\n" || !a.Warm {
			t.Fatalf("spoil #%d: %s warm=%v %q %q", i, a.Status, a.Warm, a.Stdout, a.Stderr)
		}
		if a.KilledDescendants != 1 {
			t.Errorf("spoil #%d: killed_descendants %d, want its sleep", i, a.KilledDescendants)
		}
		b := h.runWait(t, "check", "")
		if b.Status != StatusSucceeded || !b.Warm {
			t.Fatalf("check #%d: %s warm=%v %q %q", i, b.Status, b.Warm, b.Stdout, b.Stderr)
		}
		if b.Stdout != want {
			t.Errorf("check #%d saw what the spoiler left:\n got %s\nwant %s", i, b.Stdout, want)
		}
	}
	if left := h.zygoteChildren(t); len(left) > 0 {
		t.Errorf("the fork server still has children: %v", left)
	}
}

// TestWarmSlotsServeManyRuns: a pid namespace and its init serve run
// after run, and each run's script is pid 2 with nothing else in the
// namespace but init.
func TestWarmSlotsServeManyRuns(t *testing.T) {
	h := newHarness(t, nil)
	h.waitWarm(t)
	h.script(t, "pids", `{"source": `+src(`import json, os
print(json.dumps([os.getpid(), sorted(int(p) for p in os.listdir("/proc") if p.isdigit())]))
`)+`}`)
	z := h.r.warm.get(DefaultInterpreter())
	server := vigiltest.ChildrenOf(z.cmd.Process.Pid)
	if len(server) != 1 {
		t.Fatalf("the fork server's shim has children %v", server)
	}
	const runs = 10
	inits := map[int]bool{} // host pids of the slots' inits seen
	for i := range runs {
		ex := h.runWait(t, "pids", "")
		if ex.Status != StatusSucceeded || !ex.Warm {
			t.Fatalf("run %d: %s warm=%v %s %q", i, ex.Status, ex.Warm, ex.Reason, ex.Stderr)
		}
		if want := "[2, [1, 2]]\n"; ex.Stdout != want {
			t.Errorf("run %d: pid and processes %q, want %q", i, ex.Stdout, want)
		}
		for _, pid := range vigiltest.ChildrenOf(server[0]) {
			inits[pid] = true
		}
	}
	// With an init per run, each of them would have been seen while its
	// run waited, prepared.
	if len(inits) > runs/2 {
		t.Errorf("%d runs had %d inits: slots do not serve run after run", runs, len(inits))
	}
	if left := h.zygoteChildren(t); len(left) > 0 {
		t.Errorf("the fork server still has children: %v", left)
	}
}

// TestWarmIdleSlotsClose: the slots a burst of runs made are closed once
// they have been idle for warmSlotIdle; the prepared runs stay.
func TestWarmIdleSlotsClose(t *testing.T) {
	defer func(d time.Duration) { warmSlotIdle = d }(warmSlotIdle)
	warmSlotIdle = 2 * time.Second
	h := newHarness(t, nil)
	h.waitWarm(t)
	h.script(t, "nap", `{"source": "import time\ntime.sleep(0.5)\n"}`)
	server := vigiltest.ChildrenOf(h.r.warm.get(DefaultInterpreter()).cmd.Process.Pid)
	if len(server) != 1 {
		t.Fatalf("the fork server's shim has children %v", server)
	}
	var wg sync.WaitGroup
	for range DefaultPoolSize {
		wg.Go(func() {
			if ex := h.runWait(t, "nap", ""); ex.Status != StatusSucceeded || !ex.Warm {
				t.Errorf("run: %s warm=%v %s %q", ex.Status, ex.Warm, ex.Reason, ex.Stderr)
			}
		})
	}
	wg.Wait()
	after := len(vigiltest.ChildrenOf(server[0]))
	if after <= warmParked {
		t.Fatalf("%d slots after %d runs at once, want more than the %d prepared runs hold", after, DefaultPoolSize, warmParked)
	}
	end := time.Now()
	for n := after; n != warmParked; n = len(vigiltest.ChildrenOf(server[0])) {
		if time.Since(end) > warmSlotIdle+5*time.Second {
			t.Fatalf("%d slots %v after the burst, want the %d of the prepared runs", n, time.Since(end).Round(time.Millisecond), warmParked)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if left := h.zygoteChildren(t); len(left) > 0 {
		t.Errorf("the fork server still has children: %v", left)
	}
	if ex := h.runWait(t, "nap", ""); ex.Status != StatusSucceeded || !ex.Warm {
		t.Errorf("a run after: %s warm=%v %s %q", ex.Status, ex.Warm, ex.Reason, ex.Stderr)
	}
}

// TestWarmServerRetires: a fork server that has served its runs is
// replaced; the old one exits once its runs end, and runs stay warm.
func TestWarmServerRetires(t *testing.T) {
	h := newHarness(t, nil)
	h.r.warm.mu.Lock()
	h.r.warm.maxRuns = 4
	h.r.warm.mu.Unlock()
	h.waitWarm(t)
	h.script(t, "r", `{"source": "print('ok')\n"}`)
	first := h.r.warm.get(DefaultInterpreter())
	warm := 0
	for range 12 {
		ex := h.runWait(t, "r", "")
		if ex.Status != StatusSucceeded || ex.Stdout != "ok\n" {
			t.Fatalf("%s %s %q", ex.Status, ex.Reason, ex.Stderr)
		}
		if ex.Warm {
			warm++
		}
	}
	if warm < 8 {
		t.Errorf("%d of 12 runs warm", warm)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !first.isDead() {
		if time.Now().After(deadline) {
			t.Fatal("the first fork server has not exited")
		}
		time.Sleep(20 * time.Millisecond)
	}
	now := h.r.warm.get(DefaultInterpreter())
	if now == nil || now == first {
		t.Fatalf("no new fork server: %v", now)
	}
	// The pool is full again, of runs of the new server.
	key := parkKey{DefaultInterpreter(), true}
	for {
		h.r.warm.mu.Lock()
		n, fromNew := len(h.r.warm.parked[key]), 0
		for _, pk := range h.r.warm.parked[key] {
			if pk.z == now {
				fromNew++
			}
		}
		h.r.warm.mu.Unlock()
		if n == warmParked && fromNew == n {
			break
		}
		if time.Now().After(deadline) {
			h.r.warm.mu.Lock()
			cur, in := h.r.warm.servers[DefaultInterpreter()], h.r.warm.inflight[key]
			h.r.warm.mu.Unlock()
			t.Fatalf("%d runs prepared, %d by the new server, %d being prepared; want %d (the server now current: the new one %v, ready %v)",
				n, fromNew, in, warmParked, cur == now, cur != nil && cur.isReady())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestWarmServerKilled: when the fork server dies under a running script,
// the run ends killed, with the reason, nothing of it is left, and later
// runs start (cold, then warm again).
func TestWarmServerKilled(t *testing.T) {
	h := newHarness(t, nil)
	h.waitWarm(t)
	h.script(t, "long", `{"source": "import time\nprint('up', flush=True)\ntime.sleep(60)\n", "timeout": "90s"}`)
	z := h.r.warm.get(DefaultInterpreter())
	ctx := t.Context()
	ex, err := h.r.Submit(ctx, RunRequest{Script: "long", User: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for {
		cur, err := h.r.Get(ctx, ex.ID)
		if err != nil {
			t.Fatal(err)
		}
		if cur.Status == StatusRunning {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(time.Second) // into its sleep
	server := vigiltest.ChildrenOf(z.cmd.Process.Pid)
	if len(server) != 1 {
		t.Fatalf("fork server shim children %v", server)
	}
	if err := syscall.Kill(server[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	final, err := h.r.Wait(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if final.Status != StatusKilled || !strings.Contains(final.Reason, "fork server") {
		t.Errorf("status %s (%s), want killed by the fork server's death", final.Status, final.Reason)
	}
	h.assertRunGone(t, final)
	h.script(t, "after", `{"source": "print('fine')\n"}`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ex := h.runWait(t, "after", "")
		if ex.Status != StatusSucceeded || ex.Stdout != "fine\n" {
			t.Fatalf("after: %s %s %q", ex.Status, ex.Reason, ex.Stderr)
		}
		if ex.Warm {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("runs are not warm again after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// useCgroups makes the pool prepare its runs in cg from now on, discarding
// those prepared before.
func (p *warmPool) useCgroups(t *testing.T, cg *Cgroups) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		busy := 0
		for _, n := range p.inflight {
			busy += n
		}
		if busy == 0 {
			p.cgroups = cg
			for k, l := range p.parked {
				for _, pk := range l {
					p.discard(pk)
				}
				delete(p.parked, k)
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("runs still being prepared after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWarmOnlyDefaultInterpreter: a script that names another interpreter,
// or sets what Python reads at start-up, starts cold.
func TestWarmOnlyDefaultInterpreter(t *testing.T) {
	h := newHarness(t, nil)
	h.waitWarm(t)
	other, err := filepath.EvalSymlinks(DefaultInterpreter())
	if err != nil || other == DefaultInterpreter() {
		t.Skipf("no second path to the default interpreter (%v)", err)
	}
	for name, spec := range map[string]string{
		"other-interpreter": `{"source": "print('ok')\n", "interpreter": ` + src(other) + `}`,
		"hashseed":          `{"source": "print('ok')\n", "env": {"PYTHONHASHSEED": "0"}}`,
		"default":           `{"source": "print('ok')\n"}`,
	} {
		h.script(t, name, spec)
		ex := h.runWait(t, name, "")
		if ex.Status != StatusSucceeded || ex.Stdout != "ok\n" {
			t.Fatalf("%s: %s %s %q", name, ex.Status, ex.Reason, ex.Stderr)
		}
		if want := name == "default"; ex.Warm != want {
			t.Errorf("%s: warm %v, want %v", name, ex.Warm, want)
		}
	}
}

// TestRunsCannotSignalEachOther: every run is its own process group, so a
// script's kill(0) and kill(-1) reach only its own run, never another run
// of the same user forked by the same fork server.
func TestRunsCannotSignalEachOther(t *testing.T) {
	for _, mode := range []string{"cold", "warm"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.NoWarmPool = mode == "cold" })
			if mode == "warm" {
				h.waitWarm(t)
			}
			h.script(t, "sleeper", `{"source": `+src("import time\nprint('up', flush=True)\ntime.sleep(2)\nprint('survived')\n")+`, "timeout": "20s"}`)
			h.script(t, "killer", `{"source": `+src("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept ProcessLookupError:\n    pass\nos.kill(0, signal.SIGKILL)\n")+`, "timeout": "20s"}`)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			sleeper, err := h.r.Submit(ctx, RunRequest{Script: "sleeper", User: "tester"})
			if err != nil {
				t.Fatal(err)
			}
			for { // the sleeper is up before the killer starts
				ex, err := h.r.Get(ctx, sleeper.ID)
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(ex.Stdout, "up") {
					break
				}
				if ex.Finished != nil || ctx.Err() != nil {
					t.Fatalf("sleeper: %s %q %q", ex.Status, ex.Stdout, ex.Stderr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			k := h.runWait(t, "killer", "")
			if k.Status != StatusKilled || k.Signal != "SIGKILL" || k.Warm != (mode == "warm") {
				t.Errorf("killer: %s %s warm=%v %q, want killed by its own SIGKILL", k.Status, k.Signal, k.Warm, k.Stderr)
			}
			s, err := h.r.Wait(ctx, sleeper.ID)
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != StatusSucceeded || s.Stdout != "up\nsurvived\n" {
				t.Errorf("sleeper: %s %s %q, want it untouched by the other run's kills", s.Status, s.Signal, s.Stdout)
			}
		})
	}
}

// prepared has the default interpreter's fork server prepare runs with a
// network, waits until n are ready and returns the cgroup directories of
// those ready.
func (p *warmPool) prepared(t *testing.T, n int) []string {
	t.Helper()
	z := p.get(DefaultInterpreter())
	if z == nil {
		t.Fatal("no fork server")
	}
	key := parkKey{DefaultInterpreter(), true}
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		p.refillLocked(key, z)
		var dirs []string
		for _, pk := range p.parked[key] {
			if pk.cg != nil {
				dirs = append(dirs, pk.cg.Dirs()...)
			}
		}
		ready := len(p.parked[key])
		p.mu.Unlock()
		if ready >= n {
			return dirs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d runs prepared after 10 s, want %d", ready, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWarmPoolRefillsAfterStart: a prepared run taken from the pool is
// replaced once its script has started, not while it is on its way there;
// a discarded one is replaced too.
func TestWarmPoolRefillsAfterStart(t *testing.T) {
	h := newHarness(t, nil)
	h.waitWarm(t)
	h.r.warm.prepared(t, warmParked)
	key := parkKey{DefaultInterpreter(), true}
	parked := func() (n, inflight int) {
		h.r.warm.mu.Lock()
		defer h.r.warm.mu.Unlock()
		return len(h.r.warm.parked[key]), h.r.warm.inflight[key]
	}
	waitFull := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if n, _ := parked(); n == warmParked {
				return
			}
			if time.Now().After(deadline) {
				n, in := parked()
				t.Fatalf("%s: %d prepared, %d in flight; want %d", what, n, in, warmParked)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	pk := h.r.warm.take(DefaultInterpreter(), true)
	if pk == nil {
		t.Fatal("nothing prepared")
	}
	time.Sleep(200 * time.Millisecond)
	if n, in := parked(); n+in != warmParked-1 {
		t.Fatalf("before the taken run started: %d prepared, %d in flight; want %d, none being prepared", n, in, warmParked-1)
	}
	h.r.warm.discard(pk)
	waitFull("after a discard")

	h.script(t, "hi", `{"source": "print('hi')\n"}`)
	if ex := h.runWait(t, "hi", `{}`); !ex.Warm || ex.Status != StatusSucceeded {
		t.Fatalf("run: warm=%v %s %s", ex.Warm, ex.Status, ex.Reason)
	}
	waitFull("after a run")
}
