//go:build linux

package runner

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Limits for one run. Zero means "no limit requested".
type Limits struct {
	// MemoryBytes bounds the run's memory, swap excluded: on cgroup v1
	// memory.memsw.limit_in_bytes is set to the same value when that file
	// exists, on cgroup v2 memory.swap.max is 0.
	MemoryBytes int64
	// CPUMillis bounds CPU bandwidth in thousandths of a core (1000 = one
	// core), as a CFS quota over a 100 ms period. The kernel's smallest
	// quota is 1 ms, so the smallest limit is 10.
	CPUMillis int64
	// Pids bounds the tasks (processes and threads) alive in the run at once.
	Pids int64
}

// Mechanism names which mechanism enforces a limit, recorded on each
// execution.
const (
	MechCgroupV1 = "cgroup-v1"
	MechCgroupV2 = "cgroup-v2"
)

// The limits a cgroup can enforce, as the keys of Available and Enforced.
const (
	LimitMemory = "memory"
	LimitPids   = "pids"
	LimitCPU    = "cpu"
)

// Kill mechanisms, in order of preference; see CgroupOptions.KillMechanism.
const (
	// KillCgroupKill writes "1" to cgroup.kill (cgroup v2, Linux 5.14+):
	// the kernel kills every process in the cgroup, and those forked while it
	// does so, at once.
	KillCgroupKill = "cgroup.kill"
	// KillFreeze freezes the cgroup (v2 cgroup.freeze, or the v1 freezer
	// controller), SIGKILLs every process, then thaws it: frozen processes
	// cannot fork or exit, so no pid escapes or is reused meanwhile.
	KillFreeze = "freeze"
	// KillSignal reads cgroup.procs and SIGKILLs each process until the
	// cgroup is empty; pids.max bounds what a fork bomb adds between rounds.
	KillSignal = "signal"
)

// ErrNoCgroups is returned by DetectCgroups when no cgroup mechanism serves
// any limit.
var ErrNoCgroups = errors.New("no cgroup mechanism serves any limit")

// CgroupOptions configure DetectCgroups. The zero value of each field takes
// the default.
type CgroupOptions struct {
	// Parent is the vigil-owned cgroup that holds one child cgroup per run,
	// as a path relative to the root of each hierarchy ("vigil" is
	// /sys/fs/cgroup/vigil on v2 and /sys/fs/cgroup/memory/vigil, …, on v1).
	// It is created when missing. Components are [A-Za-z0-9_.-]; required.
	// Sweep removes every run cgroup under it, so two vigil instances on one
	// host need two parents.
	Parent string
	// Root is where the cgroup file systems are mounted; only mounts at or
	// below it are used. Default /sys/fs/cgroup.
	Root string
	// MountInfo is the mount table to read. Default /proc/self/mountinfo.
	MountInfo string
	// KillMechanism forces one of KillCgroupKill, KillFreeze, KillSignal;
	// DetectCgroups fails if it is not available. Default: the first
	// available in that order.
	KillMechanism string
	// KillTimeout bounds how long Kill waits for a cgroup to empty.
	// Default 5s.
	KillTimeout time.Duration
}

// withDefaults returns a copy of o with defaults applied, or an error naming
// the invalid field.
func (o CgroupOptions) withDefaults() (CgroupOptions, error) {
	p := strings.Trim(o.Parent, "/")
	if p == "" {
		return o, errors.New("invalid CgroupOptions.Parent: required")
	}
	for c := range strings.SplitSeq(p, "/") {
		if c == "" || c == "." || c == ".." || !cgParentRE.MatchString(c) {
			return o, fmt.Errorf("invalid CgroupOptions.Parent %q: want a relative path of [A-Za-z0-9_.-] components", o.Parent)
		}
	}
	o.Parent = p
	if o.Root == "" {
		o.Root = "/sys/fs/cgroup"
	}
	o.Root = filepath.Clean(o.Root)
	if o.MountInfo == "" {
		o.MountInfo = "/proc/self/mountinfo"
	}
	switch o.KillMechanism {
	case "", KillCgroupKill, KillFreeze, KillSignal:
	default:
		return o, fmt.Errorf("invalid CgroupOptions.KillMechanism %q: want %s, %s or %s", o.KillMechanism, KillCgroupKill, KillFreeze, KillSignal)
	}
	if o.KillTimeout < 0 {
		return o, fmt.Errorf("invalid CgroupOptions.KillTimeout %s: negative", o.KillTimeout)
	}
	if o.KillTimeout == 0 {
		o.KillTimeout = 5 * time.Second
	}
	return o, nil
}

var (
	cgParentRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	cgRunNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,200}$`)
)

// Roles a hierarchy plays for a run. A v2 hierarchy plays all of them; a v1
// hierarchy plays those of its controllers that vigil uses.
const (
	cgRoleMemory  = LimitMemory
	cgRolePids    = LimitPids
	cgRoleCPU     = LimitCPU
	cgRoleCPUAcct = "cpuacct"
	cgRoleFreezer = "freezer"
	cgRoleKill    = "kill" // the unified tree used for cgroup.kill beside v1
)

// cgHierarchy is one cgroup tree in which each run gets a directory.
type cgHierarchy struct {
	mount  string   // where the tree is mounted
	parent string   // the vigil parent cgroup's directory in it
	roles  []string // what vigil uses it for
	cpuset bool     // v1 cpuset is co-mounted: new cgroups need cpus and mems
}

func (h *cgHierarchy) has(role string) bool { return slices.Contains(h.roles, role) }

// cgroupFS makes and removes cgroup directories. On cgroupfs the kernel fills
// a new directory with its interface files; tests replace this with a fake
// kernel working on a temporary directory.
type cgroupFS struct {
	mkdir func(path string) error
	rmdir func(path string) error
}

var cgKernelFS = cgroupFS{
	mkdir: func(path string) error { return syscall.Mkdir(path, 0o755) },
	rmdir: syscall.Rmdir,
}

// Cgroups is a detected cgroup hierarchy (v2) or set of hierarchies (v1)
// under a vigil-owned parent cgroup. It is read-only after DetectCgroups and
// safe for concurrent use.
type Cgroups struct {
	opts        CgroupOptions
	fs          cgroupFS
	version     int
	hiers       []*cgHierarchy // where each run gets a directory, in join order
	spare       []*cgHierarchy // parents made while detecting but unused; Sweep looks there too
	available   map[string]string
	unavailable map[string]error
	kill        string
	swapOn      func() bool
	// enableMu makes enabling the v2 controllers and making a run's
	// directory one step, so that no directory is made between another
	// Create's write of cgroup.subtree_control and its effect.
	enableMu *sync.Mutex
	made     []string // directories DetectCgroups made
}

// DetectCgroups inspects the mount table and returns a manager rooted at the
// parent cgroup opts.Parent, which it creates in each hierarchy used.
//
// Cgroup v2 is used when the unified hierarchy serves at least as many of
// the memory, pids and cpu limits as v1 does: a controller serves when the
// root's cgroup.controllers lists it and it can be enabled in
// cgroup.subtree_control of every cgroup from the root down to the parent.
// The parent never holds processes (v2's "no internal processes" rule);
// runs get cgroups below it. Otherwise each limit is served by the v1
// hierarchy of its controller, when mounted, writable and carrying the limit
// file. cpuacct (CPU time) and freezer (Kill) are used on v1 when mounted.
//
// On v1, when the unified hierarchy is mounted and supports cgroup.kill,
// each run also gets a cgroup there that holds no controllers and serves
// only to kill the run's whole tree at once.
//
// Available reports which limits are served and Unavailable why the others
// are not. When no limit is served DetectCgroups returns an error wrapping
// ErrNoCgroups that gives the reasons.
func DetectCgroups(opts CgroupOptions) (*Cgroups, error) {
	return detectCgroups(opts, cgKernelFS)
}

func detectCgroups(opts CgroupOptions, fs cgroupFS) (*Cgroups, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("detect cgroups: %w", err)
	}
	data, err := os.ReadFile(o.MountInfo)
	if err != nil {
		return nil, fmt.Errorf("detect cgroups: %w", err)
	}
	mounts, err := parseMountInfo(data)
	if err != nil {
		return nil, fmt.Errorf("detect cgroups: %s: %w", o.MountInfo, err)
	}
	mounts = slices.DeleteFunc(mounts, func(m cgMount) bool {
		return m.mountPoint != o.Root && !strings.HasPrefix(m.mountPoint, o.Root+"/")
	})
	c := &Cgroups{opts: o, fs: fs, swapOn: cgSwapActive, enableMu: &sync.Mutex{}}

	v2 := c.detectV2(mounts)
	v1 := c.detectV1(mounts)
	switch {
	case len(v2.available) > 0 && len(v2.available) >= len(v1.available):
		c.version, c.hiers, c.available, c.unavailable = 2, v2.hiers, v2.available, v2.unavailable
		c.kill, err = cgPickKill(o.KillMechanism, v2.kill)
	case len(v1.available) > 0:
		c.version, c.available, c.unavailable = 1, v1.available, v1.unavailable
		var opts []string
		if v2.killDir != nil {
			opts = append(opts, KillCgroupKill)
		}
		if v1.freezer != nil {
			opts = append(opts, KillFreeze)
		}
		c.kill, err = cgPickKill(o.KillMechanism, append(opts, KillSignal))
		c.hiers = v1.hiers
		switch c.kill {
		case KillCgroupKill:
			c.hiers = append(c.hiers, v2.killDir)
		case KillFreeze:
			if !slices.Contains(c.hiers, v1.freezer) {
				c.hiers = append(c.hiers, v1.freezer)
			}
		}
	default:
		var why []string
		for _, l := range []string{LimitMemory, LimitPids, LimitCPU} {
			why = append(why, fmt.Sprintf("%s: v2: %v; v1: %v", l, v2.unavailable[l], v1.unavailable[l]))
		}
		return nil, fmt.Errorf("detect cgroups under %s: %w (%s)", o.Root, ErrNoCgroups, strings.Join(why, "; "))
	}
	if err != nil {
		return nil, fmt.Errorf("detect cgroups: CgroupOptions.KillMechanism: %w", err)
	}
	for _, h := range slices.Concat(v2.created, v1.created) {
		if !slices.ContainsFunc(slices.Concat(c.hiers, c.spare), func(u *cgHierarchy) bool { return u.parent == h.parent }) {
			c.spare = append(c.spare, h)
		}
	}
	for _, l := range []string{LimitMemory, LimitPids, LimitCPU} {
		if _, ok := c.available[l]; ok {
			delete(c.unavailable, l)
		} else if c.unavailable[l] == nil {
			c.unavailable[l] = fmt.Errorf("cgroup v%d: controller %s not available", c.version, l)
		}
	}
	return c, nil
}

// cgDetection is what one cgroup version offers.
type cgDetection struct {
	hiers       []*cgHierarchy
	available   map[string]string
	unavailable map[string]error
	kill        []string       // kill mechanisms, best first (v2)
	created     []*cgHierarchy // every hierarchy where the parent exists
	killDir     *cgHierarchy   // unified tree usable for cgroup.kill beside v1
	freezer     *cgHierarchy   // v1 freezer hierarchy
}

func cgPickKill(forced string, avail []string) (string, error) {
	if forced == "" {
		return avail[0], nil
	}
	if !slices.Contains(avail, forced) {
		return "", fmt.Errorf("%s not available (have %s)", forced, strings.Join(avail, ", "))
	}
	return forced, nil
}

// Version is the cgroup version serving the limits: 1 or 2.
func (c *Cgroups) Version() int { return c.version }

// Available maps each limit that a cgroup enforces (LimitMemory, LimitPids,
// LimitCPU) to its mechanism (MechCgroupV1 or MechCgroupV2). A limit with no
// working cgroup mechanism is absent; the caller falls back to an rlimit or
// refuses the run.
func (c *Cgroups) Available() map[string]string { return maps.Clone(c.available) }

// Unavailable maps each limit absent from Available to the reason, for logs.
func (c *Cgroups) Unavailable() map[string]error {
	return maps.Clone(c.unavailable)
}

// KillMechanism is how Kill empties a run's cgroup: KillCgroupKill,
// KillFreeze or KillSignal.
func (c *Cgroups) KillMechanism() string { return c.kill }

// ParentDirs lists the parent cgroup's directory in each hierarchy used.
func (c *Cgroups) ParentDirs() []string {
	d := make([]string, len(c.hiers))
	for i, h := range c.hiers {
		d[i] = h.parent
	}
	return d
}

// String describes the detected setup, for logs.
func (c *Cgroups) String() string {
	keys := make([]string, 0, len(c.available))
	for k := range c.available {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "cgroup v%d:", c.version)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, c.available[k])
	}
	fmt.Fprintf(&b, " kill=%s parents=%s", c.kill, strings.Join(c.ParentDirs(), ","))
	return b.String()
}

// Cgroup is the cgroup of one run: one directory on v2, one per hierarchy on
// v1.
type Cgroup struct {
	c        *Cgroups
	name     string
	dirs     []string // parallel to c.hiers
	enforced map[string]string
	// limits is what the cgroup's files hold: a limit is written only
	// when it changes.
	limits Limits
}

// Create makes the cgroup for one run, named name ([A-Za-z0-9_-], the
// execution id), and writes every requested limit that a cgroup mechanism
// serves before any process can join. It fails, naming the file, when a
// directory cannot be made or a limit cannot be written, and then leaves
// nothing behind; that makes the run fail closed. A name already in use is
// an error. Requested limits absent from Available are not applied here:
// Enforced on the result lists what is, and the caller enforces the rest
// some other way or refuses the run.
func (c *Cgroups) Create(name string, l Limits) (*Cgroup, error) {
	if !cgRunNameRE.MatchString(name) {
		return nil, fmt.Errorf("create cgroup %q: invalid name", name)
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	g := &Cgroup{c: c, name: name, enforced: map[string]string{}}
	if c.version == 2 {
		c.enableMu.Lock()
		defer c.enableMu.Unlock()
		if err := c.enableV2(); err != nil {
			return nil, fmt.Errorf("create cgroup %s: %w", name, err)
		}
	}
	for _, h := range c.hiers {
		dir := filepath.Join(h.parent, name)
		if err := c.fs.mkdir(dir); err != nil {
			g.rmdirs()
			return nil, fmt.Errorf("create cgroup %s: mkdir %s: %w", name, dir, cgUnwrap(err))
		}
		g.dirs = append(g.dirs, dir)
		if h.cpuset {
			if err := cgInitCpuset(h.parent, dir); err != nil {
				g.rmdirs()
				return nil, fmt.Errorf("create cgroup %s: %w", name, err)
			}
		}
	}
	if err := g.limit(l); err != nil {
		g.rmdirs()
		return nil, fmt.Errorf("create cgroup %s: %w", name, err)
	}
	return g, nil
}

// Limit sets the cgroup's limits to l, as Create does, writing only those
// that differ from what it holds (a zero field lifts that limit): for a
// cgroup made ahead of its run, whose process waits until they are set. It
// fails naming the file; the caller must then not start the run.
func (g *Cgroup) Limit(l Limits) error {
	if err := l.validate(); err != nil {
		return fmt.Errorf("limit cgroup %s: %w", g.name, err)
	}
	if err := g.limit(l); err != nil {
		return fmt.Errorf("limit cgroup %s: %w", g.name, err)
	}
	return nil
}

// cgLimitValue is what a limit file gets for n: n itself, or none (the
// file's word for no limit) when n is not positive.
func cgLimitValue(n int64, none string) string {
	if n <= 0 {
		return none
	}
	return strconv.FormatInt(n, 10)
}

// setEnforced records, or forgets, that mech enforces limit.
func setEnforced(m map[string]string, limit, mech string, on bool) {
	if on {
		m[limit] = mech
	} else {
		delete(m, limit)
	}
}

func (g *Cgroup) limit(l Limits) error {
	var err error
	if g.c.version == 2 {
		err = g.limitV2(l)
	} else {
		err = g.limitV1(l)
	}
	if err != nil {
		// What the files hold is now unknown: write everything next time.
		g.limits = Limits{MemoryBytes: -1, CPUMillis: -1, Pids: -1}
		return err
	}
	g.limits = l
	return nil
}

func (l Limits) validate() error {
	switch {
	case l.MemoryBytes < 0:
		return fmt.Errorf("invalid Limits.MemoryBytes %d: negative", l.MemoryBytes)
	case l.Pids < 0:
		return fmt.Errorf("invalid Limits.Pids %d: negative", l.Pids)
	case l.CPUMillis < 0:
		return fmt.Errorf("invalid Limits.CPUMillis %d: negative", l.CPUMillis)
	case l.CPUMillis > 0 && l.CPUMillis < 10:
		return fmt.Errorf("invalid Limits.CPUMillis %d: below the kernel's smallest quota, 10 (1 ms per 100 ms)", l.CPUMillis)
	}
	return nil
}

// cfsPeriodMicros is the CFS period used for CPU limits.
const cfsPeriodMicros = 100000

// cfsQuota converts thousandths of a core to a quota per cfsPeriodMicros.
func cfsQuota(millis int64) int64 { return millis * cfsPeriodMicros / 1000 }

// Name is the run's name as given to Create.
func (g *Cgroup) Name() string { return g.name }

// Dirs lists the run's cgroup directories (v2: one; v1: one per hierarchy).
func (g *Cgroup) Dirs() []string { return slices.Clone(g.dirs) }

// Enforced maps each requested limit that the cgroup enforces to its
// mechanism (MechCgroupV1 or MechCgroupV2).
func (g *Cgroup) Enforced() map[string]string { return maps.Clone(g.enforced) }

// ProcsFiles lists every cgroup.procs file a process must be written into to
// join the run (v1: one per hierarchy, v2: one), in order. The sandbox shim
// writes the script's pid into each while the script is stopped after exec,
// before its first instruction.
func (g *Cgroup) ProcsFiles() []string {
	f := make([]string, len(g.dirs))
	for i, d := range g.dirs {
		f[i] = filepath.Join(d, "cgroup.procs")
	}
	return f
}

// Join moves process pid, with all its threads, into the run's cgroup by
// writing it into every ProcsFiles entry. It stops at the first failure and
// names the file; the caller must then kill the process.
func (g *Cgroup) Join(pid int) error {
	s := strconv.Itoa(pid)
	for _, f := range g.ProcsFiles() {
		if err := writeCgroupFile(f, s); err != nil {
			return fmt.Errorf("join cgroup %s: pid %d: %w", g.name, pid, err)
		}
	}
	return nil
}

// Pids lists the processes currently in the run's cgroup, in every
// hierarchy, sorted. A removed cgroup has none.
func (g *Cgroup) Pids() ([]int, error) {
	var all []int
	for _, f := range g.ProcsFiles() {
		p, err := readCgroupPids(f)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
			continue // removed, or being removed
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup %s pids: %w", g.name, err)
		}
		all = append(all, p...)
	}
	sort.Ints(all)
	return slices.Compact(all), nil
}

// CgroupStats is what a run's cgroup accounted.
type CgroupStats struct {
	// CPUTime is the CPU time used by every process of the run (v1 needs the
	// cpuacct controller; without it this is 0).
	CPUTime time.Duration
	// PeakMemory is the most memory charged at once, in bytes (0 without the
	// memory controller, or on v2 before Linux 5.19, which lacks memory.peak).
	PeakMemory int64
	// OOMKills counts processes the kernel's OOM killer killed in the run.
	OOMKills int
	// Pids is the number of tasks (processes and threads) in the cgroup now,
	// the quantity pids.max bounds.
	Pids int
}

// Stats reads what the run's cgroup accounted. Read it before Remove.
func (g *Cgroup) Stats() (CgroupStats, error) {
	var s CgroupStats
	var err error
	if g.c.version == 2 {
		err = g.statsV2(&s)
	} else {
		err = g.statsV1(&s)
	}
	if err != nil {
		return s, fmt.Errorf("cgroup %s stats: %w", g.name, err)
	}
	return s, nil
}

// Kill kills every process in the run's cgroup and waits until it is empty,
// at most CgroupOptions.KillTimeout. It uses the manager's KillMechanism and
// falls back to SIGKILLing each listed process on every round, so a fork
// bomb (bounded by pids.max) cannot escape. Killed processes that are
// children of the caller leave the cgroup without being reaped.
func (g *Cgroup) Kill() error {
	start := time.Now()
	deadline := start.Add(g.c.opts.KillTimeout)
	wait := 100 * time.Microsecond
	var mechErr error
	for round := 0; ; round++ {
		pids, err := g.Pids()
		if err != nil {
			return fmt.Errorf("kill cgroup %s: %w", g.name, err)
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			err := fmt.Errorf("kill cgroup %s: %d processes (%v) still present after %s", g.name, len(pids), cgHead(pids, 10), g.c.opts.KillTimeout)
			return errors.Join(err, mechErr)
		}
		// The mechanism again on every round: cheap, and it covers anything
		// that joined after the previous one. If it fails, signals still go
		// out; its error is reported only if the cgroup does not empty.
		if err := g.killOnce(pids); err != nil {
			mechErr = fmt.Errorf("kill cgroup %s: %s: %w", g.name, g.c.kill, err)
			cgSignalAll(pids)
		}
		if time.Since(start) > 20*time.Millisecond {
			// Still there: also signal each one, in case a process is in
			// some hierarchies but not in the one the mechanism acts on
			// (it died, or was stopped, half way through Join).
			cgSignalAll(pids)
		}
		if round > 0 {
			time.Sleep(wait)
			wait = min(2*wait, 50*time.Millisecond)
		}
	}
}

// killOnce applies the kill mechanism once; pids is what cgroup.procs held.
func (g *Cgroup) killOnce(pids []int) error {
	switch g.c.kill {
	case KillCgroupKill:
		return writeCgroupFile(filepath.Join(g.dirFor(cgRoleKill), "cgroup.kill"), "1")
	case KillFreeze:
		return g.freezeKill()
	}
	cgSignalAll(pids)
	return nil
}

// freezeKill freezes the run, SIGKILLs every process, then thaws it so the
// signals are delivered.
func (g *Cgroup) freezeKill() error {
	dir := g.dirFor(cgRoleFreezer)
	file, frozen, thawed, state := "cgroup.freeze", "1", "0", "cgroup.events"
	if g.c.version == 1 {
		file, frozen, thawed, state = "freezer.state", "FROZEN", "THAWED", "freezer.state"
	}
	if err := writeCgroupFile(filepath.Join(dir, file), frozen); err != nil {
		return err
	}
	// Wait a little for the freeze to settle; a task stuck in the kernel can
	// keep it FREEZING, and then the signals go out anyway.
	for i := 0; i < 100; i++ {
		b, err := os.ReadFile(filepath.Join(dir, state))
		if err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(dir, state), cgUnwrap(err))
		}
		if g.c.version == 1 && strings.TrimSpace(string(b)) == "FROZEN" ||
			g.c.version == 2 && cgroupKeyed(b, "frozen") == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	pids, err := g.Pids()
	cgSignalAll(pids)
	if terr := writeCgroupFile(filepath.Join(dir, file), thawed); terr != nil {
		return terr
	}
	return err
}

func cgSignalAll(pids []int) {
	for _, p := range pids {
		// ESRCH: it is already gone. A pid read from cgroup.procs can in
		// principle be reused before the signal; KillSignal is the fallback
		// that accepts this.
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// Remove kills what is left of the run (see Kill), then removes every
// directory of its cgroup. Removing a cgroup already removed is not an
// error.
func (g *Cgroup) Remove() error {
	deadline := time.Now().Add(g.c.opts.KillTimeout)
	killed := false
	var errs []error
	for i := len(g.dirs) - 1; i >= 0; i-- {
		d := g.dirs[i]
		for {
			// Usually the run's processes are gone by now: rmdir alone
			// tells, and it fails with EBUSY while any is left.
			err := g.c.fs.rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if errors.Is(err, syscall.EBUSY) && !killed {
				killed = true
				if err := g.Kill(); err != nil {
					return fmt.Errorf("remove cgroup %s: %w", g.name, err)
				}
				continue
			}
			// EBUSY: the last exits are still being accounted.
			if errors.Is(err, syscall.EBUSY) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			errs = append(errs, fmt.Errorf("remove cgroup %s: rmdir %s: %w", g.name, d, cgUnwrap(err)))
			break
		}
	}
	return errors.Join(errs...)
}

// rmdirs removes the directories Create made, after a failed Create; no
// process can have joined yet.
func (g *Cgroup) rmdirs() {
	for i := len(g.dirs) - 1; i >= 0; i-- {
		_ = g.c.fs.rmdir(g.dirs[i])
	}
}

// dirFor is the run's directory in the hierarchy that plays role, or "".
func (g *Cgroup) dirFor(role string) string {
	for i, h := range g.c.hiers {
		if i < len(g.dirs) && (g.c.version == 2 || h.has(role)) {
			return g.dirs[i]
		}
	}
	return ""
}

// Sweep kills and removes every run cgroup left under the parent, e.g. by a
// vigil that crashed, and returns how many runs it removed. Call it at
// start-up, before any run. Only directories named like runs are touched.
func (c *Cgroups) Sweep() (int, error) {
	names := map[string]bool{}
	for _, h := range slices.Concat(c.hiers, c.spare) {
		ents, err := os.ReadDir(h.parent)
		if errors.Is(err, os.ErrNotExist) {
			continue // no parent, no runs
		}
		if err != nil {
			return 0, fmt.Errorf("sweep cgroups: read %s: %w", h.parent, cgUnwrap(err))
		}
		for _, e := range ents {
			if e.IsDir() && cgRunNameRE.MatchString(e.Name()) {
				names[e.Name()] = true
			}
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var errs []error
	n := 0
	for _, name := range sorted {
		g := c.existing(name)
		if err := g.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("sweep cgroups: %w", err))
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// existing is the Cgroup of a run whose directories already exist, in the
// hierarchies in use and in the spare ones. After a crash some may be
// missing; then Kill uses KillSignal, which needs no particular one.
func (c *Cgroups) existing(name string) *Cgroup {
	sub := *c
	sub.hiers = nil
	var dirs []string
	for i, h := range slices.Concat(c.hiers, c.spare) {
		d := filepath.Join(h.parent, name)
		if _, err := os.Stat(d); err != nil {
			if i < len(c.hiers) {
				sub.kill = KillSignal
			}
			continue
		}
		sub.hiers = append(sub.hiers, h)
		dirs = append(dirs, d)
	}
	return &Cgroup{c: &sub, name: name, dirs: dirs, enforced: map[string]string{}}
}

// cgMount is one line of /proc/self/mountinfo that matters here.
type cgMount struct {
	root       string   // the mounted directory inside the file system
	mountPoint string   // where it is mounted
	fsType     string   // cgroup, cgroup2, …
	superOpts  []string // per-superblock options: the v1 controllers
}

// parseMountInfo parses the format of proc(5) /proc/pid/mountinfo.
func parseMountInfo(data []byte) ([]cgMount, error) {
	var out []cgMount
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			return nil, fmt.Errorf("line %d: malformed mount entry %q", n, line)
		}
		out = append(out, cgMount{
			root:       unescapeMount(f[3]),
			mountPoint: unescapeMount(f[4]),
			fsType:     f[sep+1],
			superOpts:  strings.Split(f[sep+3], ","),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writeCgroupFile writes val to an existing cgroup interface file. It never
// creates the file: on cgroupfs a missing file means a missing controller.
func writeCgroupFile(path, val string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", val, path, cgUnwrap(err))
	}
	_, err = f.WriteString(val)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", val, path, cgUnwrap(err))
	}
	return nil
}

// readCgroupFile reads a cgroup interface file; the error names it.
func readCgroupFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, cgUnwrap(err))
	}
	return b, nil
}

// readCgroupInt reads a file holding one integer ("max" reads as -1).
func readCgroupInt(path string) (int64, error) {
	b, err := readCgroupFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return -1, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return v, nil
}

// cgroupKeyed returns the value of key in a flat keyed file ("key value"
// lines, as cpu.stat, memory.events), or -1 when absent.
func cgroupKeyed(b []byte, key string) int64 {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && k == key {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// readCgroupPids reads a cgroup.procs file.
func readCgroupPids(path string) ([]int, error) {
	b, err := readCgroupFile(path)
	if err != nil {
		return nil, err
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// cgUnwrap drops an *os.PathError wrapper, whose path the caller's message
// already names, keeping the errno for errors.Is.
func cgUnwrap(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// cgInitCpuset gives a new cgroup of a hierarchy where v1 cpuset is co-mounted
// its parent's cpus and mems; without them no process can join.
func cgInitCpuset(parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readCgroupFile(filepath.Join(dir, f))
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(cur)) > 0 {
			continue
		}
		v, err := readCgroupFile(filepath.Join(parent, f))
		if err != nil {
			return err
		}
		if err := writeCgroupFile(filepath.Join(dir, f), strings.TrimSpace(string(v))); err != nil {
			return err
		}
	}
	return nil
}

// mkdirAll makes dir and any missing directory between mount and dir, and
// remembers those it made for Close.
func (c *Cgroups) mkdirAll(mount, dir string) error {
	rel, err := filepath.Rel(mount, dir)
	if err != nil {
		return err
	}
	cur := mount
	for comp := range strings.SplitSeq(rel, "/") {
		cur = filepath.Join(cur, comp)
		if _, err := os.Stat(cur); err == nil {
			continue
		}
		err := c.fs.mkdir(cur)
		if err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("mkdir %s: %w", cur, cgUnwrap(err))
		}
		if err == nil {
			c.made = append(c.made, cur)
		}
	}
	return nil
}

// Close removes the parent cgroup in every hierarchy, and the directories
// above it that DetectCgroups made, so that an instance with a parent of
// its own (each data directory gets one by default) leaves no cgroup behind
// when it stops. Call it only when no other manager uses the parent, once
// every run has ended: a directory that still holds a cgroup stays.
func (c *Cgroups) Close() error {
	dirs := slices.Clone(c.made)
	for _, h := range slices.Concat(c.hiers, c.spare) {
		if !slices.Contains(dirs, h.parent) {
			dirs = append(dirs, h.parent)
		}
	}
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) }) // children first
	var errs []error
	for _, dir := range dirs {
		err := c.fs.rmdir(dir)
		if err != nil && !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.EBUSY) && !errors.Is(err, syscall.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, cgUnwrap(err)))
		}
	}
	return errors.Join(errs...)
}

// cgSwapActive reports whether any swap area is in use (/proc/swaps has more
// than its header line). When it cannot tell it says yes.
func cgSwapActive() bool {
	b, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return true
	}
	return len(strings.Split(strings.TrimSpace(string(b)), "\n")) > 1
}

func cgHead(p []int, n int) []int {
	if len(p) > n {
		return p[:n]
	}
	return p
}
