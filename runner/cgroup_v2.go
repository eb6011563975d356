//go:build linux

package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgV2Controllers are the v2 controllers vigil uses, in the order written to
// cgroup.subtree_control.
var cgV2Controllers = []string{LimitCPU, LimitMemory, LimitPids}

// detectV2 finds the unified hierarchy, makes the parent cgroup in it and
// enables the controllers vigil uses from the root down to the parent.
func (c *Cgroups) detectV2(mounts []cgMount) cgDetection {
	d := cgDetection{available: map[string]string{}, unavailable: map[string]error{}}
	fail := func(err error) cgDetection {
		for _, l := range cgV2Controllers {
			if d.unavailable[l] == nil {
				d.unavailable[l] = err
			}
		}
		return d
	}
	i := slices.IndexFunc(mounts, func(m cgMount) bool { return m.fsType == "cgroup2" })
	if i < 0 {
		return fail(fmt.Errorf("no cgroup2 mount under %s", c.opts.Root))
	}
	mount := mounts[i].mountPoint
	b, err := readCgroupFile(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return fail(err)
	}
	want := slices.DeleteFunc(slices.Clone(cgV2Controllers), func(s string) bool {
		if !slices.Contains(strings.Fields(string(b)), s) {
			d.unavailable[s] = fmt.Errorf("controller %s not in %s", s, filepath.Join(mount, "cgroup.controllers"))
			return true
		}
		return false
	})
	// Make the parent, then enable from the root down: a controller reaches
	// the runs only if the parent and every ancestor enable it. Writing one
	// already enabled is a no-op.
	parent := filepath.Join(mount, c.opts.Parent)
	if err := c.mkdirAll(mount, parent); err != nil {
		return fail(err)
	}
	d.created = []*cgHierarchy{{mount: mount, parent: parent}}
	want = c.enableControllers(mount, want, d.unavailable)
	rel, _ := filepath.Rel(mount, parent)
	cur := mount
	for comp := range strings.SplitSeq(rel, "/") {
		cur = filepath.Join(cur, comp)
		want = c.enableControllers(cur, want, d.unavailable)
	}
	h := &cgHierarchy{mount: mount, parent: parent}
	for _, l := range want {
		d.available[l] = MechCgroupV2
		h.roles = append(h.roles, l)
	}
	if len(want) > 0 {
		d.hiers = []*cgHierarchy{h}
	}
	if cgExists(filepath.Join(parent, "cgroup.kill")) {
		d.kill = append(d.kill, KillCgroupKill)
		d.killDir = &cgHierarchy{mount: mount, parent: parent, roles: []string{cgRoleKill}}
	}
	if cgExists(filepath.Join(parent, "cgroup.freeze")) {
		d.kill = append(d.kill, KillFreeze)
	}
	d.kill = append(d.kill, KillSignal)
	return d
}

// enableControllers enables want in dir's cgroup.subtree_control and returns
// those enabled there; it records why each other one is not.
func (c *Cgroups) enableControllers(dir string, want []string, why map[string]error) []string {
	if len(want) == 0 {
		return nil
	}
	file := filepath.Join(dir, "cgroup.subtree_control")
	enabled := func() []string {
		b, err := readCgroupFile(file)
		if err != nil {
			for _, w := range want {
				why[w] = err
			}
			return nil
		}
		var on []string
		for _, f := range strings.Fields(string(b)) {
			on = append(on, strings.TrimPrefix(f, "+"))
		}
		return on
	}
	on := enabled()
	var missing []string
	for _, w := range want {
		if !slices.Contains(on, w) {
			missing = append(missing, "+"+w)
		}
	}
	if len(missing) == 0 {
		return want
	}
	if err := writeCgroupFile(file, strings.Join(missing, " ")); err != nil {
		// One at a time, so that one that cannot be enabled (EBUSY: dir
		// holds processes; cpu with realtime tasks) costs only itself.
		for _, m := range missing {
			if err := writeCgroupFile(file, m); err != nil {
				why[m[1:]] = err
			}
		}
	}
	on = enabled()
	return slices.DeleteFunc(slices.Clone(want), func(w string) bool {
		if slices.Contains(on, w) {
			return false
		}
		if why[w] == nil {
			why[w] = fmt.Errorf("controller %s not enabled in %s", w, file)
		}
		return true
	})
}

// enableV2 makes sure the parent still passes every controller in use to the
// runs; something else (a service manager) may have changed it.
func (c *Cgroups) enableV2() error {
	var plus []string
	for _, l := range cgV2Controllers {
		if c.available[l] != "" {
			plus = append(plus, "+"+l)
		}
	}
	if len(plus) == 0 {
		return nil
	}
	return writeCgroupFile(filepath.Join(c.hiers[0].parent, "cgroup.subtree_control"), strings.Join(plus, " "))
}

// limitV2 writes into the run's cgroup the limits of l that differ from
// those it holds.
func (g *Cgroup) limitV2(l Limits) error {
	dir := g.dirs[0]
	have := g.limits
	if l.MemoryBytes != have.MemoryBytes && g.c.available[LimitMemory] != "" {
		if err := writeCgroupFile(filepath.Join(dir, "memory.max"), cgLimitValue(l.MemoryBytes, "max")); err != nil {
			return err
		}
		if have.MemoryBytes <= 0 {
			swap := filepath.Join(dir, "memory.swap.max")
			if err := writeCgroupFile(swap, "0"); err != nil {
				// Without swap accounting the file is absent; that is fine
				// only when there is no swap to escape to.
				if !errors.Is(err, os.ErrNotExist) || g.c.swapOn() {
					return err
				}
			}
		}
		setEnforced(g.enforced, LimitMemory, MechCgroupV2, l.MemoryBytes > 0)
	}
	if l.CPUMillis != have.CPUMillis && g.c.available[LimitCPU] != "" {
		v := cgLimitValue(cfsQuota(l.CPUMillis), "max") + " " + strconv.Itoa(cfsPeriodMicros)
		if err := writeCgroupFile(filepath.Join(dir, "cpu.max"), v); err != nil {
			return err
		}
		setEnforced(g.enforced, LimitCPU, MechCgroupV2, l.CPUMillis > 0)
	}
	if l.Pids != have.Pids && g.c.available[LimitPids] != "" {
		if err := writeCgroupFile(filepath.Join(dir, "pids.max"), cgLimitValue(l.Pids, "max")); err != nil {
			return err
		}
		setEnforced(g.enforced, LimitPids, MechCgroupV2, l.Pids > 0)
	}
	return nil
}

// statsV2 reads cpu.stat, memory.peak, memory.events and pids.current.
func (g *Cgroup) statsV2(s *CgroupStats) error {
	dir := g.dirs[0]
	b, err := readCgroupFile(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return err
	}
	if us := cgroupKeyed(b, "usage_usec"); us > 0 {
		s.CPUTime = time.Duration(us) * time.Microsecond
	}
	if g.c.available[LimitMemory] != "" {
		peak, err := readCgroupInt(filepath.Join(dir, "memory.peak"))
		switch {
		case err == nil:
			s.PeakMemory = peak
		case !errors.Is(err, os.ErrNotExist): // absent before Linux 5.19
			return err
		}
		b, err := readCgroupFile(filepath.Join(dir, "memory.events"))
		if err != nil {
			return err
		}
		s.OOMKills = int(max(cgroupKeyed(b, "oom_kill"), 0))
	}
	return g.statsPids(s, dir)
}

// statsPids fills s.Pids from pids.current in the pids hierarchy's dir, or
// counts cgroup.procs when there is no pids controller.
func (g *Cgroup) statsPids(s *CgroupStats, dir string) error {
	if g.c.available[LimitPids] != "" && dir != "" {
		n, err := readCgroupInt(filepath.Join(dir, "pids.current"))
		if err != nil {
			return err
		}
		s.Pids = int(n)
		return nil
	}
	p, err := g.Pids()
	s.Pids = len(p)
	return err
}

// OpenFD opens the run's v2 cgroup directory (O_PATH|O_DIRECTORY|O_CLOEXEC)
// for syscall.SysProcAttr's UseCgroupFD and CgroupFD, which start a child
// directly inside it (clone3 CLONE_INTO_CGROUP). The caller closes the fd.
// On cgroup v1 it fails: processes join v1 hierarchies only through
// ProcsFiles.
func (g *Cgroup) OpenFD() (int, error) {
	if g.c.version != 2 || len(g.dirs) != 1 {
		return -1, fmt.Errorf("cgroup %s: open fd: cgroup v%d has no single directory to clone into", g.name, g.c.version)
	}
	fd, err := unix.Open(g.dirs[0], unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup %s: open %s: %w", g.name, g.dirs[0], err)
	}
	return fd, nil
}

func cgExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
