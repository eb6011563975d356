//go:build linux

package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ---- the v2 file protocol, against a fake kernel on a temporary tree ----

// cgFakeKernel is a cgroupFS that behaves like cgroup2fs on an ordinary
// directory: mkdir fills the new cgroup with the core interface files and
// those of every controller enabled in its parent's cgroup.subtree_control;
// rmdir removes them. broken names files that mkdir makes as directories, so
// that writing them fails as a kernel refusal would.
type cgFakeKernel struct {
	broken map[string]bool
}

var cgFakeFiles = map[string]map[string]string{
	"": {
		"cgroup.procs": "", "cgroup.subtree_control": "", "cgroup.kill": "", "cgroup.freeze": "0",
		"cgroup.events": "populated 0\nfrozen 0\n", "cgroup.type": "domain\n",
		"cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
	},
	"memory": {
		"memory.max": "max\n", "memory.swap.max": "max\n", "memory.peak": "0\n", "memory.current": "0\n",
		"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
	},
	"pids": {"pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n"},
	"cpu":  {"cpu.max": "max 100000\n", "cpu.weight": "100\n"},
}

func (f *cgFakeKernel) fs() cgroupFS {
	return cgroupFS{mkdir: f.mkdir, rmdir: f.rmdir}
}

func (f *cgFakeKernel) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	b, err := os.ReadFile(filepath.Join(filepath.Dir(dir), "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	var ctrls []string
	for _, c := range strings.Fields(string(b)) {
		ctrls = append(ctrls, strings.TrimPrefix(c, "+"))
	}
	files := map[string]string{"cgroup.controllers": strings.Join(ctrls, " ") + "\n"}
	for _, c := range append([]string{""}, ctrls...) {
		for k, v := range cgFakeFiles[c] {
			files[k] = v
		}
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if f.broken[name] {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// cgFakeFile reports whether name is one of the fake kernel's files (a
// directory of that name is a file broken by a test).
func cgFakeFile(name string) bool {
	for _, files := range cgFakeFiles {
		if _, ok := files[name]; ok {
			return true
		}
	}
	return false
}

func (f *cgFakeKernel) rmdir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir() && !f.broken[e.Name()] && !cgFakeFile(e.Name()) {
			return syscall.EBUSY // a child cgroup
		}
	}
	for _, e := range ents {
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return syscall.Rmdir(dir)
}

// cgFakeTree lays out a cgroup2 root at a temporary directory, with a
// mountinfo that mounts it there, and returns both paths.
func cgFakeTree(t *testing.T, controllers string) (root, mountinfo string) {
	t.Helper()
	return cgFakeTreeAt(t, t.TempDir(), controllers)
}

// cgFakeTreeAt is cgFakeTree in the directory base.
func cgFakeTreeAt(t *testing.T, base, controllers string) (root, mountinfo string) {
	t.Helper()
	root = filepath.Join(base, "cg root") // a space, escaped in mountinfo
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"cgroup.controllers":     controllers + "\n",
		"cgroup.subtree_control": "",
		"cgroup.procs":           "1\n",
		"cpu.stat":               "usage_usec 1\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mountinfo = filepath.Join(base, "mountinfo")
	esc := strings.ReplaceAll(root, " ", `\040`)
	mi := "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n" +
		"35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" + // outside Root: ignored
		"41 22 0:38 / " + esc + " rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
	if err := os.WriteFile(mountinfo, []byte(mi), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, mountinfo
}

func cgReadTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func cgWriteTest(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCgroupV2FileProtocol(t *testing.T) {
	root, mi := cgFakeTree(t, "cpuset cpu io memory hugetlb pids rdma misc")
	fake := &cgFakeKernel{}
	c, err := detectCgroups(CgroupOptions{Parent: "vigil", Root: root, MountInfo: mi}, fake.fs())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("detected: %s", c)
	if c.Version() != 2 {
		t.Fatalf("Version = %d, want 2", c.Version())
	}
	want := map[string]string{"memory": MechCgroupV2, "pids": MechCgroupV2, "cpu": MechCgroupV2}
	if got := c.Available(); !maps.Equal(got, want) {
		t.Fatalf("Available = %v, want %v", got, want)
	}
	if len(c.Unavailable()) != 0 {
		t.Fatalf("Unavailable = %v", c.Unavailable())
	}
	if c.KillMechanism() != KillCgroupKill {
		t.Fatalf("KillMechanism = %s", c.KillMechanism())
	}
	// Controllers enabled at the root and in the parent, nothing else.
	for _, dir := range []string{root, filepath.Join(root, "vigil")} {
		got := strings.Fields(cgReadTrim(t, filepath.Join(dir, "cgroup.subtree_control")))
		if !slices.Equal(got, []string{"+cpu", "+memory", "+pids"}) {
			t.Fatalf("%s/cgroup.subtree_control = %q", dir, got)
		}
	}

	// Something resets the parent's subtree_control; Create enables again.
	cgWriteTest(t, filepath.Join(root, "vigil", "cgroup.subtree_control"), "")
	g, err := c.Create("exec-0190a1b2-c3d4", Limits{MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	if got := cgReadTrim(t, filepath.Join(root, "vigil", "cgroup.subtree_control")); got != "+cpu +memory +pids" {
		t.Fatalf("parent subtree_control = %q", got)
	}
	dir := filepath.Join(root, "vigil", "exec-0190a1b2-c3d4")
	for file, want := range map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "0",
		"cpu.max":         "50000 100000",
		"pids.max":        "8",
	} {
		if got := cgReadTrim(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := g.Enforced(); !maps.Equal(got, want) {
		t.Fatalf("Enforced = %v, want %v", got, want)
	}
	if got := g.ProcsFiles(); !slices.Equal(got, []string{filepath.Join(dir, "cgroup.procs")}) {
		t.Fatalf("ProcsFiles = %v", got)
	}
	fd, err := g.OpenFD()
	if err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)

	// Join writes the pid; Pids reads it back.
	if err := g.Join(4242); err != nil {
		t.Fatal(err)
	}
	if got := cgReadTrim(t, filepath.Join(dir, "cgroup.procs")); got != "4242" {
		t.Fatalf("cgroup.procs = %q", got)
	}
	if p, err := g.Pids(); err != nil || !slices.Equal(p, []int{4242}) {
		t.Fatalf("Pids = %v, %v", p, err)
	}
	// A cgroup that never empties: Kill writes cgroup.kill, then gives up
	// after the bound and says so. (No signal goes to the fake pid.)
	c.opts.KillTimeout = 50 * time.Millisecond
	if err := g.Kill(); err == nil || !strings.Contains(err.Error(), "still present") {
		t.Fatalf("Kill of a cgroup that stays populated: %v", err)
	}
	if got := cgReadTrim(t, filepath.Join(dir, "cgroup.kill")); got != "1" {
		t.Fatalf("cgroup.kill = %q", got)
	}
	cgWriteTest(t, filepath.Join(dir, "cgroup.procs"), "")

	// Stats parses cpu.stat, memory.peak, memory.events and pids.current.
	cgWriteTest(t, filepath.Join(dir, "cpu.stat"), "usage_usec 1234567\nuser_usec 1000000\nsystem_usec 234567\nnr_periods 12\nnr_throttled 3\nthrottled_usec 5000\n")
	cgWriteTest(t, filepath.Join(dir, "memory.peak"), "67100000\n")
	cgWriteTest(t, filepath.Join(dir, "memory.events"), "low 0\nhigh 0\nmax 17\noom 2\noom_kill 2\noom_group_kill 0\n")
	cgWriteTest(t, filepath.Join(dir, "pids.current"), "3\n")
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (CgroupStats{CPUTime: 1234567 * time.Microsecond, PeakMemory: 67100000, OOMKills: 2, Pids: 3}); st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}

	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Remove: %v", err)
	}
	if err := g.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}

	// A limit the kernel refuses (here: a directory where the file should
	// be) fails Create, names the file, and leaves nothing behind.
	for _, file := range []string{"memory.max", "memory.swap.max", "cpu.max", "pids.max"} {
		fake.broken = map[string]bool{file: true}
		_, err := c.Create("exec-broken", Limits{MemoryBytes: 1 << 30, CPUMillis: 1000, Pids: 64})
		path := filepath.Join(root, "vigil", "exec-broken", file)
		if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, syscall.EISDIR) {
			t.Fatalf("Create with %s broken: err = %v, want one naming %s", file, err, path)
		}
		if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("failed Create left %s behind", filepath.Dir(path))
		}
	}
	fake.broken = nil

	// An unwritable subtree_control in the parent fails Create too.
	sc := filepath.Join(root, "vigil", "cgroup.subtree_control")
	os.Remove(sc)
	if err := os.Mkdir(sc, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("exec-2", Limits{MemoryBytes: 1 << 30}); err == nil || !strings.Contains(err.Error(), sc) {
		t.Fatalf("Create with subtree_control a directory: %v", err)
	}
	os.Remove(sc)
	cgWriteTest(t, sc, "+cpu +memory +pids")

	// A name in use fails Create, naming the directory.
	if err := os.Mkdir(filepath.Join(root, "vigil", "exec-3"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create("exec-3", Limits{}); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "vigil", "exec-3")) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create of an existing cgroup: %v", err)
	}
	os.Remove(filepath.Join(root, "vigil", "exec-3"))

	// Bad input.
	for _, name := range []string{"", "a/b", "..", "a b", strings.Repeat("x", 201)} {
		if _, err := c.Create(name, Limits{}); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
	}
	for _, l := range []Limits{{MemoryBytes: -1}, {Pids: -1}, {CPUMillis: -1}, {CPUMillis: 5}} {
		if _, err := c.Create("exec-4", l); err == nil || !strings.Contains(err.Error(), "Limits.") {
			t.Errorf("Create with %+v: %v", l, err)
		}
	}

	// Sweep, from a second manager, removes what the first left.
	for _, n := range []string{"exec-a", "exec-b"} {
		if _, err := c.Create(n, Limits{Pids: 4}); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "vigil", "not.a.run"), 0o755); err != nil {
		t.Fatal(err)
	}
	c2, err := detectCgroups(CgroupOptions{Parent: "vigil", Root: root, MountInfo: mi}, fake.fs())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c2.Sweep(); err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2", n, err)
	}
	ents, _ := os.ReadDir(filepath.Join(root, "vigil"))
	for _, e := range ents {
		if e.IsDir() && e.Name() != "not.a.run" {
			t.Errorf("left after Sweep: %s", e.Name())
		}
	}
}

func TestCgroupV2PartialControllers(t *testing.T) {
	root, mi := cgFakeTree(t, "memory pids")
	fake := &cgFakeKernel{}
	c, err := detectCgroups(CgroupOptions{Parent: "vigil.slice/runs", Root: root, MountInfo: mi}, fake.fs())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"memory": MechCgroupV2, "pids": MechCgroupV2}; !maps.Equal(c.Available(), want) {
		t.Fatalf("Available = %v, want %v", c.Available(), want)
	}
	if c.Unavailable()["cpu"] == nil {
		t.Fatal("no reason given for cpu")
	}
	// Enabled at every level down to the parent.
	for _, d := range []string{"", "vigil.slice", "vigil.slice/runs"} {
		if got := cgReadTrim(t, filepath.Join(root, d, "cgroup.subtree_control")); got != "+memory +pids" {
			t.Fatalf("%q subtree_control = %q", d, got)
		}
	}
	g, err := c.Create("run1", Limits{MemoryBytes: 1 << 20, CPUMillis: 1000, Pids: 3})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"memory": MechCgroupV2, "pids": MechCgroupV2}; !maps.Equal(g.Enforced(), want) {
		t.Fatalf("Enforced = %v: cpu has no cgroup here and must be left to the caller", g.Enforced())
	}
	if _, err := os.Stat(filepath.Join(g.Dirs()[0], "cpu.max")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("cpu.max exists without the cpu controller: %v", err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}

	// No controllers at all: no manager, and the reasons.
	root2, mi2 := cgFakeTree(t, "io")
	_, err = detectCgroups(CgroupOptions{Parent: "vigil", Root: root2, MountInfo: mi2}, fake.fs())
	if !errors.Is(err, ErrNoCgroups) || !strings.Contains(err.Error(), "cgroup.controllers") {
		t.Fatalf("detect without controllers: %v", err)
	}
}

func TestCgroupOptions(t *testing.T) {
	for _, p := range []string{"", "/", "a//b", "../x", "a/./b", "a b", "a\nb"} {
		if _, err := (CgroupOptions{Parent: p}).withDefaults(); err == nil || !strings.Contains(err.Error(), "CgroupOptions.Parent") {
			t.Errorf("Parent %q: %v", p, err)
		}
	}
	o, err := CgroupOptions{Parent: "/vigil.slice/runs/"}.withDefaults()
	if err != nil || o.Parent != "vigil.slice/runs" || o.Root != "/sys/fs/cgroup" || o.MountInfo != "/proc/self/mountinfo" || o.KillTimeout != 5*time.Second {
		t.Fatalf("withDefaults = %+v, %v", o, err)
	}
	if _, err := (CgroupOptions{Parent: "v", KillMechanism: "nuke"}).withDefaults(); err == nil {
		t.Error("unknown KillMechanism accepted")
	}
}

func TestCgroupParseMountInfo(t *testing.T) {
	data := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,cpu,cpuacct
41 31 0:38 /docker/abc /sys/fs/cgroup/uni\040fied rw,relatime shared:9 master:2 - cgroup2 cgroup2 rw,nsdelegate

`
	got, err := parseMountInfo([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	if m := got[1]; m.mountPoint != "/sys/fs/cgroup/cpu,cpuacct" || m.fsType != "cgroup" || !slices.Equal(m.superOpts, []string{"rw", "cpu", "cpuacct"}) {
		t.Errorf("entry 1 = %+v", m)
	}
	if m := got[2]; m.mountPoint != "/sys/fs/cgroup/uni fied" || m.root != "/docker/abc" || m.fsType != "cgroup2" {
		t.Errorf("entry 2 = %+v", m)
	}
	if _, err := parseMountInfo([]byte("1 2 3\n")); err == nil {
		t.Error("malformed line accepted")
	}
	if got := unescapeMount(`a\134b\040c\`); got != `a\b c\` {
		t.Errorf("unescape = %q", got)
	}
}

func FuzzCgroupParseMountInfo(f *testing.F) {
	f.Add([]byte("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw\n"))
	f.Add([]byte("32 31 0:29 / /a\\040b rw - cgroup cgroup rw,cpu,cpuacct\n"))
	f.Add([]byte(`- - - - - - - \1`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := parseMountInfo(data)
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.fsType == "" && len(m.superOpts) == 0 {
				t.Fatalf("empty entry from %q", data)
			}
		}
	})
}

// ---- real cgroups on this machine ----

// cgReal detects the machine's cgroups under a parent of the test's
// own, removed at the end; it skips unless root and every limit has a
// cgroup.
func cgReal(t *testing.T, opts CgroupOptions) *Cgroups {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real cgroup tests need root")
	}
	if opts.Parent == "" {
		name := strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())
		opts.Parent = fmt.Sprintf("vigil-test-%d-%s", os.Getpid(), name)
	}
	c, err := DetectCgroups(opts)
	if errors.Is(err, ErrNoCgroups) {
		t.Skipf("no cgroup controllers here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cgCleanupParents(t, c) })
	if len(c.Available()) < 3 {
		t.Skipf("not every limit has a cgroup here: %s; unavailable: %v", c, c.Unavailable())
	}
	return c
}

func cgCleanupParents(t *testing.T, c *Cgroups) {
	t.Helper()
	if _, err := c.Sweep(); err != nil {
		t.Errorf("cleanup sweep: %v", err)
	}
	for _, h := range slices.Concat(c.hiers, c.spare) {
		if err := syscall.Rmdir(h.parent); err != nil && !errors.Is(err, syscall.ENOENT) {
			t.Errorf("cleanup: rmdir %s: %v", h.parent, err)
		}
	}
}

// cgChild is a process started outside the cgroup, held until released.
type cgChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bytes.Buffer
	done  chan struct{}
	err   error // of Wait, after done
}

// cgStartChild starts sh -c script, which first waits on stdin; join moves it
// into g and releases it. The test reaps it (one wait goroutine).
func cgStartChild(t *testing.T, script string) *cgChild {
	t.Helper()
	ch := &cgChild{out: &bytes.Buffer{}, done: make(chan struct{})}
	ch.cmd = exec.Command("/bin/sh", "-c", "read _; "+script)
	ch.cmd.Stdout, ch.cmd.Stderr = ch.out, ch.out
	// Orphans keep the output pipe open; do not wait for them.
	ch.cmd.WaitDelay = time.Second
	var err error
	if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := ch.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		ch.err = ch.cmd.Wait()
		close(ch.done)
	}()
	t.Cleanup(func() {
		ch.cmd.Process.Kill()
		<-ch.done
	})
	return ch
}

func (ch *cgChild) joinAndGo(t *testing.T, g *Cgroup) {
	t.Helper()
	if err := g.Join(ch.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	ch.stdin.Write([]byte("\n"))
	ch.stdin.Close()
}

func (ch *cgChild) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-ch.done:
		return ch.err
	case <-time.After(d):
		t.Fatalf("child still running after %s; output: %s", d, ch.out)
		return nil
	}
}

// cgWaitFor polls cond until it holds or d passes.
func cgWaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func cgAssertRemoved(t *testing.T, g *Cgroup) {
	t.Helper()
	dirs := g.Dirs()
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after Remove (%v)", d, err)
		}
	}
}

const cgPython = "/usr/bin/python3"

func cgNeedPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(cgPython); err != nil {
		t.Skipf("needs %s", cgPython)
	}
}

func TestCgroupDetectReal(t *testing.T) {
	c := cgReal(t, CgroupOptions{})
	t.Logf("DetectCgroups: version %d, available %v, kill %s", c.Version(), c.Available(), c.KillMechanism())
	t.Logf("parents: %v", c.ParentDirs())
	for k, v := range c.Unavailable() {
		t.Logf("unavailable %s: %v", k, v)
	}
	g, err := c.Create("exec-probe", Limits{MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a run joins: %v", g.ProcsFiles())
	mech := MechCgroupV1
	if c.Version() == 2 {
		mech = MechCgroupV2
	}
	if want := map[string]string{"memory": mech, "pids": mech, "cpu": mech}; !maps.Equal(g.Enforced(), want) {
		t.Fatalf("Enforced = %v, want %v", g.Enforced(), want)
	}
	if c.Version() == 1 {
		for role, want := range map[string]map[string]string{
			cgRoleMemory: {"memory.limit_in_bytes": "67108864"},
			cgRolePids:   {"pids.max": "8"},
			cgRoleCPU:    {"cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000"},
		} {
			for f, v := range want {
				if got := cgReadTrim(t, filepath.Join(g.dirFor(role), f)); got != v {
					t.Errorf("%s = %s, want %s", f, got, v)
				}
			}
		}
		if memsw := filepath.Join(g.dirFor(cgRoleMemory), "memory.memsw.limit_in_bytes"); cgExists(memsw) {
			if got := cgReadTrim(t, memsw); got != "67108864" {
				t.Errorf("memsw = %s", got)
			}
		}
	}
	cgAssertRemoved(t, g)
}

func TestCgroupForkBombHeld(t *testing.T) {
	cgNeedPython(t)
	c := cgReal(t, CgroupOptions{})
	g, err := c.Create("exec-bomb", Limits{MemoryBytes: 256 << 20, CPUMillis: 500, Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	bomb := `import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.005)
`
	ch := cgStartChild(t, "exec "+cgPython+" -c '"+bomb+"'")
	ch.joinAndGo(t, g)
	pidsDir := g.dirFor(cgRolePids)
	cgWaitFor(t, 5*time.Second, "the bomb to hit pids.max", func() bool {
		b, err := os.ReadFile(filepath.Join(pidsDir, "pids.events"))
		return err == nil && cgroupKeyed(b, "max") > 0
	})
	most := 0
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		st, err := g.Stats()
		if err != nil {
			t.Fatal(err)
		}
		most = max(most, st.Pids)
		if st.Pids > 8 {
			t.Fatalf("pids.current = %d > pids.max 8", st.Pids)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("fork bomb: at most %d tasks seen, pids.max 8", most)
	if most < 4 {
		t.Fatalf("the bomb never got going: %d tasks", most)
	}
	start := time.Now()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kill (%s) took %s", c.KillMechanism(), time.Since(start))
	if p, _ := g.Pids(); len(p) != 0 {
		t.Fatalf("left after Kill: %v", p)
	}
	if err := ch.wait(t, 5*time.Second); err == nil {
		t.Fatal("bomb exited cleanly")
	}
	cgAssertRemoved(t, g)
}

func TestCgroupOOMKill(t *testing.T) {
	cgNeedPython(t)
	c := cgReal(t, CgroupOptions{})
	g, err := c.Create("exec-oom", Limits{MemoryBytes: 64 << 20, Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	ch := cgStartChild(t, `exec `+cgPython+` -c 'b = b"\x01" * (200 << 20); print("survived", len(b))'`)
	ch.joinAndGo(t, g)
	err = ch.wait(t, 20*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("allocating 200 MiB under 64 MiB: %v, output %q", err, ch.out)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("OOM run: %+v", st)
	if st.OOMKills < 1 {
		t.Errorf("OOMKills = %d", st.OOMKills)
	}
	if st.PeakMemory < 48<<20 || st.PeakMemory > 65<<20 {
		t.Errorf("PeakMemory = %d, want near the 64 MiB limit", st.PeakMemory)
	}
	cgAssertRemoved(t, g)
}

func TestCgroupCPUAccounted(t *testing.T) {
	cgNeedPython(t)
	c := cgReal(t, CgroupOptions{})
	g, err := c.Create("exec-cpu", Limits{CPUMillis: 500, Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	ch := cgStartChild(t, `exec `+cgPython+` -c '
import time
t = time.process_time()
while time.process_time() - t < 0.4:
    pass
'`)
	start := time.Now()
	ch.joinAndGo(t, g)
	if err := ch.wait(t, 20*time.Second); err != nil {
		t.Fatalf("busy loop: %v %s", err, ch.out)
	}
	wall := time.Since(start)
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	statFile := filepath.Join(g.dirFor(cgRoleCPU), "cpu.stat")
	throttled := cgroupKeyed([]byte(cgReadTrim(t, statFile)), "nr_throttled")
	t.Logf("CPU run: cpu time %s in %s wall at 0.5 core; nr_throttled %d", st.CPUTime, wall, throttled)
	if c.Version() == 1 && g.dirFor(cgRoleCPUAcct) == "" {
		t.Skip("no cpuacct hierarchy: CPU time not accounted on this v1 machine")
	}
	if st.CPUTime < 400*time.Millisecond {
		t.Errorf("CPUTime = %s, want ≥ 400ms", st.CPUTime)
	}
	if throttled < 1 || wall < 600*time.Millisecond {
		t.Errorf("0.4s of CPU at 0.5 core: throttled %d times, %s wall: quota not enforced", throttled, wall)
	}
	cgAssertRemoved(t, g)
}

// cgRealKill is cgReal with kill mechanism m; it skips the test when this
// machine lacks m.
func cgRealKill(t *testing.T, m string) *Cgroups {
	t.Helper()
	c := cgReal(t, CgroupOptions{})
	if !slices.Contains(cgAvailableKills(t, c), m) {
		t.Skipf("%s not available here", m)
	}
	return cgReal(t, CgroupOptions{Parent: c.opts.Parent, KillMechanism: m})
}

// TestCgroupKillSetsid: a double-forked setsid sleeper, out of the child's
// process group and session and reparented away, dies with the cgroup;
// with every kill mechanism this machine has.
func TestCgroupKillSetsid(t *testing.T) {
	mechs := []string{KillCgroupKill, KillFreeze, KillSignal}
	for _, m := range mechs {
		t.Run(m, func(t *testing.T) {
			c := cgRealKill(t, m)
			g, err := c.Create("exec-setsid", Limits{Pids: 16})
			if err != nil {
				t.Fatal(err)
			}
			ch := cgStartChild(t, `setsid sh -c 'sleep 300 & sleep 300 & exit 0'; exec sleep 300`)
			ch.joinAndGo(t, g)
			var orphans []int
			cgWaitFor(t, 5*time.Second, "2 orphaned sleepers and the child", func() bool {
				var ok bool
				orphans, ok = cgOrphanedSleepers(t, g, 3, ch.cmd.Process.Pid)
				return ok
			})
			if err := g.Kill(); err != nil {
				t.Fatal(err)
			}
			if p, _ := g.Pids(); len(p) != 0 {
				t.Fatalf("left after Kill: %v", p)
			}
			cgWaitFor(t, 5*time.Second, "orphans reaped", func() bool {
				for _, pid := range orphans {
					if s := cgProcState(pid); s != "" && s != "Z" {
						return false
					}
				}
				return true
			})
			if err := ch.wait(t, 5*time.Second); err == nil {
				t.Fatal("sleeper exited cleanly")
			}
			cgAssertRemoved(t, g)
		})
	}
}

// TestCgroupLimitWritesChanges: Limit writes only the limits that differ
// from what the cgroup holds (a file the kernel would now refuse is not
// touched when its value stays), and a zero lifts a limit (v2 file
// protocol, on a fake tree).
func TestCgroupLimitWritesChanges(t *testing.T) {
	root, mi := cgFakeTree(t, "cpu memory pids")
	fake := &cgFakeKernel{}
	c, err := detectCgroups(CgroupOptions{Parent: "vigil", Root: root, MountInfo: mi}, fake.fs())
	if err != nil {
		t.Fatal(err)
	}
	l := Limits{MemoryBytes: 256 << 20, CPUMillis: 1000, Pids: 64}
	g, err := c.Create("exec-limits", l)
	if err != nil {
		t.Fatal(err)
	}
	dir := g.Dirs()[0]
	// pids.max now refuses writes.
	if err := os.Remove(filepath.Join(dir, "pids.max")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "pids.max"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := g.Limit(l); err != nil {
		t.Fatalf("Limit with the limits it holds wrote: %v", err)
	}
	l.MemoryBytes, l.CPUMillis = 512<<20, 0
	if err := g.Limit(l); err != nil {
		t.Fatalf("Limit of memory and cpu: %v", err)
	}
	if got := cgReadTrim(t, filepath.Join(dir, "memory.max")); got != "536870912" {
		t.Errorf("memory.max = %s", got)
	}
	if got := cgReadTrim(t, filepath.Join(dir, "cpu.max")); got != "max 100000" {
		t.Errorf("cpu.max = %s, want the limit lifted", got)
	}
	if want := map[string]string{"memory": MechCgroupV2, "pids": MechCgroupV2}; !maps.Equal(g.Enforced(), want) {
		t.Errorf("Enforced = %v, want %v", g.Enforced(), want)
	}
	l.Pids = 8
	if err := g.Limit(l); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "pids.max")) {
		t.Fatalf("Limit of pids: %v, want the refused file named", err)
	}
	os.Remove(filepath.Join(dir, "pids.max"))
	cgWriteTest(t, filepath.Join(dir, "pids.max"), "max\n")
	// After a failure, everything is written again.
	if err := g.Limit(l); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"pids.max": "8", "memory.max": "536870912", "cpu.max": "max 100000"} {
		if got := cgReadTrim(t, filepath.Join(dir, f)); got != want {
			t.Errorf("%s = %s, want %s", f, got, want)
		}
	}
}

// TestCgroupLimitRaiseLower: on the real hierarchy, a run's memory limit
// can be raised, lowered and lifted after Create (on v1 memsw must never
// be below memory, so the order of the writes matters).
func TestCgroupLimitRaiseLower(t *testing.T) {
	c := cgReal(t, CgroupOptions{})
	if c.Available()[LimitMemory] == "" {
		t.Skip("no memory controller here")
	}
	g, err := c.Create("exec-raise", Limits{MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	file := "memory.max"
	if c.Version() == 1 {
		file = "memory.limit_in_bytes"
	}
	dir := g.dirFor(cgRoleMemory)
	for _, mb := range []int64{512, 32, 0, 128} {
		if err := g.Limit(Limits{MemoryBytes: mb << 20, CPUMillis: 500, Pids: 8}); err != nil {
			t.Fatalf("memory %d MiB: %v", mb, err)
		}
		got := cgReadTrim(t, filepath.Join(dir, file))
		if mb == 0 {
			if n, _ := strconv.ParseInt(got, 10, 64); got != "max" && n < 1<<40 {
				t.Errorf("lifted: %s = %s", file, got)
			}
			if _, ok := g.Enforced()[LimitMemory]; ok {
				t.Errorf("lifted memory still enforced: %v", g.Enforced())
			}
			continue
		}
		if got != strconv.FormatInt(mb<<20, 10) {
			t.Errorf("memory %d MiB: %s = %s", mb, file, got)
		}
		if memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes"); c.Version() == 1 && cgExists(memsw) {
			if got := cgReadTrim(t, memsw); got != strconv.FormatInt(mb<<20, 10) {
				t.Errorf("memory %d MiB: memsw = %s", mb, got)
			}
		}
	}
	cgAssertRemoved(t, g)
}

// TestCgroupRemoveKillsWhatIsLeft: Remove of a cgroup that still holds
// processes kills them first; with every kill mechanism this machine has.
func TestCgroupRemoveKillsWhatIsLeft(t *testing.T) {
	for _, m := range []string{KillCgroupKill, KillFreeze, KillSignal} {
		t.Run(m, func(t *testing.T) {
			c := cgRealKill(t, m)
			g, err := c.Create("exec-left", Limits{Pids: 16})
			if err != nil {
				t.Fatal(err)
			}
			ch := cgStartChild(t, `sleep 300 & exec sleep 300`)
			ch.joinAndGo(t, g)
			cgWaitFor(t, 5*time.Second, "the child and its sleeper", func() bool {
				p, _ := g.Pids()
				return len(p) == 2
			})
			cgAssertRemoved(t, g)
			if err := ch.wait(t, 5*time.Second); err == nil {
				t.Fatal("sleeper exited cleanly")
			}
		})
	}
}

// TestCgroupForkBombKill: a fork bomb racing Kill is emptied by every kill
// mechanism this machine has, the signal loop included.
func TestCgroupForkBombKill(t *testing.T) {
	cgNeedPython(t)
	for _, m := range []string{KillCgroupKill, KillFreeze, KillSignal} {
		t.Run(m, func(t *testing.T) {
			c := cgRealKill(t, m)
			g, err := c.Create("exec-bomb", Limits{CPUMillis: 1000, Pids: 16})
			if err != nil {
				t.Fatal(err)
			}
			ch := cgStartChild(t, `exec `+cgPython+` -c '
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
'`)
			ch.joinAndGo(t, g)
			cgWaitFor(t, 5*time.Second, "the bomb to fill pids.max", func() bool {
				p, _ := g.Pids()
				return len(p) >= 12
			})
			start := time.Now()
			if err := g.Kill(); err != nil {
				t.Fatal(err)
			}
			t.Logf("Kill took %s", time.Since(start))
			ch.wait(t, 5*time.Second)
			cgAssertRemoved(t, g)
		})
	}
}

func TestCgroupSweepReal(t *testing.T) {
	c := cgReal(t, CgroupOptions{})
	var kids []*cgChild
	for _, n := range []string{"exec-left-1", "exec-left-2"} {
		g, err := c.Create(n, Limits{MemoryBytes: 64 << 20, Pids: 8})
		if err != nil {
			t.Fatal(err)
		}
		ch := cgStartChild(t, "sleep 300 & exec sleep 300")
		ch.joinAndGo(t, g)
		kids = append(kids, ch)
	}
	// A new vigil: a second manager on the same parent.
	c2, err := DetectCgroups(CgroupOptions{Parent: c.opts.Parent})
	if err != nil {
		t.Fatal(err)
	}
	n, err := c2.Sweep()
	if err != nil || n != 2 {
		t.Fatalf("Sweep = %d, %v; want 2", n, err)
	}
	for _, ch := range kids {
		if err := ch.wait(t, 5*time.Second); err == nil {
			t.Fatal("swept cgChild exited cleanly")
		}
	}
	for _, p := range c.ParentDirs() {
		ents, err := os.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.IsDir() {
				t.Errorf("left after Sweep: %s/%s", p, e.Name())
			}
		}
	}
}

// TestCgroupV2KillReal uses the machine's unified hierarchy as cgroup v2,
// controllers or not: a child started straight into the run's cgroup with
// UseCgroupFD, one joined through cgroup.procs and a setsid orphan all die,
// with each kill mechanism the hierarchy offers (cgroup.kill, cgroup.freeze).
func TestCgroupV2KillReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	ms, err := parseMountInfo(data)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(ms, func(m cgMount) bool { return m.fsType == "cgroup2" })
	if i < 0 {
		t.Skip("no cgroup2 mount")
	}
	mount := ms[i].mountPoint
	o, err := CgroupOptions{Parent: fmt.Sprintf("vigil-test-%d-v2kill", os.Getpid()), Root: mount}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	c := &Cgroups{opts: o, fs: cgKernelFS, version: 2, available: map[string]string{}, unavailable: map[string]error{}, swapOn: cgSwapActive, enableMu: &sync.Mutex{}}
	d := c.detectV2(ms[i:])
	t.Cleanup(func() { syscall.Rmdir(filepath.Join(mount, o.Parent)) })
	if d.killDir == nil {
		t.Skipf("no cgroup.kill in the unified hierarchy at %s", mount)
	}
	c.hiers, c.available = []*cgHierarchy{d.killDir}, d.available
	if len(d.hiers) > 0 {
		c.hiers = d.hiers
	}
	t.Logf("unified hierarchy at %s, controllers for runs: %v, kill mechanisms: %v", mount, d.available, d.kill)
	for _, mech := range d.kill {
		t.Run(mech, func(t *testing.T) {
			cm := *c
			cm.kill = mech
			g, err := cm.Create("exec-v2kill", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Remove() })
			fd, err := g.OpenFD()
			if err != nil {
				t.Fatal(err)
			}
			direct := exec.Command("sleep", "300")
			direct.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
			err = direct.Start()
			syscall.Close(fd)
			if err != nil {
				t.Fatalf("start into cgroup fd: %v", err)
			}
			directDone := make(chan error, 1)
			go func() { directDone <- direct.Wait() }()
			t.Cleanup(func() { direct.Process.Kill() })
			rel, _ := filepath.Rel(mount, g.Dirs()[0])
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", direct.Process.Pid)); !strings.Contains(string(b), "0::/"+rel+"\n") {
				t.Fatalf("child started with CgroupFD is not in %s: %s", rel, b)
			}
			joined := cgStartChild(t, `setsid sh -c 'sleep 300 & exit 0'; exec sleep 300`)
			joined.joinAndGo(t, g)
			cgWaitFor(t, 5*time.Second, "an orphaned sleeper and 2 children", func() bool {
				_, ok := cgOrphanedSleepers(t, g, 3, direct.Process.Pid, joined.cmd.Process.Pid)
				return ok
			})
			if err := g.Kill(); err != nil {
				t.Fatal(err)
			}
			for _, done := range []<-chan error{directDone, cgWaitChan(joined)} {
				select {
				case err := <-done:
					var ee *exec.ExitError
					if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
						t.Fatalf("child ended with %v, want SIGKILL", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("child survived %s", mech)
				}
			}
			cgAssertRemoved(t, g)
		})
	}
}

// cgOrphanedSleepers reports whether g holds n processes, all sleep(1), and
// every one but children has been reparented away from its shell; it
// returns those orphans.
func cgOrphanedSleepers(t *testing.T, g *Cgroup, n int, children ...int) ([]int, bool) {
	t.Helper()
	p, err := g.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != n {
		return nil, false
	}
	var orphans []int
	for _, pid := range p {
		if cgProcComm(pid) != "sleep" {
			return nil, false
		}
		if slices.Contains(children, pid) {
			continue
		}
		ppid := cgProcPPID(pid)
		if ppid == os.Getpid() || slices.Contains(children, ppid) || cgProcComm(ppid) == "sh" {
			return nil, false
		}
		orphans = append(orphans, pid)
	}
	return orphans, true
}

func cgProcComm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

func cgWaitChan(ch *cgChild) <-chan error {
	c := make(chan error, 1)
	go func() { <-ch.done; c <- ch.err }()
	return c
}

// cgAvailableKills lists the kill mechanisms c's machine offers for v1 or v2.
func cgAvailableKills(t *testing.T, c *Cgroups) []string {
	t.Helper()
	var out []string
	for _, m := range []string{KillCgroupKill, KillFreeze, KillSignal} {
		o := c.opts
		o.KillMechanism = m
		if _, err := DetectCgroups(o); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func cgProcStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func cgProcState(pid int) string {
	if f := cgProcStat(pid); len(f) > 0 {
		return f[0]
	}
	return ""
}

func cgProcPPID(pid int) int {
	if f := cgProcStat(pid); len(f) > 1 {
		n, _ := strconv.Atoi(f[1])
		return n
	}
	return -1
}

// BenchmarkCgroupLifecycle measures Create, Join of a sleeping process, Kill
// and Remove of one run's cgroup: the cgroup cost of each execution.
func BenchmarkCgroupLifecycle(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	c, err := DetectCgroups(CgroupOptions{Parent: fmt.Sprintf("vigil-bench-%d", os.Getpid()), KillMechanism: os.Getenv("VIGIL_BENCH_KILL")})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() {
		c.Sweep()
		for _, h := range slices.Concat(c.hiers, c.spare) {
			syscall.Rmdir(h.parent)
		}
	})
	b.Logf("%s", c)
	var create, join, kill, remove time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		g, err := c.Create("exec-"+strconv.Itoa(i), Limits{MemoryBytes: 64 << 20, CPUMillis: 500, Pids: 8})
		if err != nil {
			b.Fatal(err)
		}
		create += time.Since(t0)
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := g.Join(cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		join += time.Since(t1)
		t2 := time.Now()
		if err := g.Kill(); err != nil {
			b.Fatal(err)
		}
		kill += time.Since(t2)
		t3 := time.Now()
		if err := g.Remove(); err != nil {
			b.Fatal(err)
		}
		remove += time.Since(t3)
		cmd.Wait()
		n++
	}
	b.ReportMetric(float64(create.Microseconds())/float64(n), "create-µs/op")
	b.ReportMetric(float64(join.Microseconds())/float64(n), "join-µs/op")
	b.ReportMetric(float64(kill.Microseconds())/float64(n), "kill-µs/op")
	b.ReportMetric(float64(remove.Microseconds())/float64(n), "remove-µs/op")
}

// TestCgroupCloseReal: Close removes the parent cgroup in every hierarchy,
// also when a crashed instance had made it, and the ancestors its manager
// made, but no ancestor that existed before, nor a parent that holds a run.
func TestCgroupCloseReal(t *testing.T) {
	outer := cgReal(t, CgroupOptions{})
	inner := outer.opts.Parent + "/a/b"
	c, err := DetectCgroups(CgroupOptions{Parent: inner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cgCleanupParents(t, c) })
	// A parent that holds a run stays.
	g, err := c.Create("exec-close", Limits{Pids: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.ParentDirs() {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a parent with a run's cgroup, after Close: %v", err)
		}
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	// The next instance finds the parent made: Close removes it all the same,
	// and a/ only where that instance made it too.
	c2, err := DetectCgroups(CgroupOptions{Parent: inner})
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.ParentDirs() {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Close: %v", p, err)
		}
		if _, err := os.Stat(filepath.Dir(p)); err != nil {
			t.Errorf("%s, which the closing manager found, after Close: %v", filepath.Dir(p), err)
		}
	}
	if err := c.Close(); err != nil { // the first instance's: removes the a/ it made
		t.Fatal(err)
	}
	for _, p := range c.ParentDirs() {
		if _, err := os.Stat(filepath.Dir(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s, which the manager made, after Close: %v", filepath.Dir(p), err)
		}
	}
	for _, p := range outer.ParentDirs() {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the outer parent, which existed, after Close: %v", err)
		}
	}
}
