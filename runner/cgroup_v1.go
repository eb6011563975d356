//go:build linux

package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// cgV1Roles are the v1 controllers vigil uses, in join order: pids first,
// so that a process is bounded before anything else, freezer last.
var cgV1Roles = []string{cgRolePids, cgRoleMemory, cgRoleCPU, cgRoleCPUAcct, cgRoleFreezer}

// cgV1Probe names the file a v1 parent cgroup must have for each role to
// work: its absence means the kernel lacks the feature (e.g. CFS bandwidth).
var cgV1Probe = map[string][]string{
	cgRolePids:    {"pids.max"},
	cgRoleMemory:  {"memory.limit_in_bytes"},
	cgRoleCPU:     {"cpu.cfs_quota_us", "cpu.cfs_period_us"},
	cgRoleCPUAcct: {"cpuacct.usage"},
	cgRoleFreezer: {"freezer.state"},
}

// detectV1 finds the v1 hierarchy of each controller vigil uses and makes
// the parent cgroup in each.
func (c *Cgroups) detectV1(mounts []cgMount) cgDetection {
	d := cgDetection{available: map[string]string{}, unavailable: map[string]error{}}
	byMount := map[string]*cgHierarchy{}
	var order []*cgHierarchy
	for _, role := range cgV1Roles {
		i := slices.IndexFunc(mounts, func(m cgMount) bool {
			return m.fsType == "cgroup" && slices.Contains(m.superOpts, role)
		})
		if i < 0 {
			d.unavailable[role] = fmt.Errorf("no cgroup v1 %s mount under %s", role, c.opts.Root)
			continue
		}
		m := mounts[i]
		h := byMount[m.mountPoint]
		if h == nil {
			h = &cgHierarchy{mount: m.mountPoint, parent: filepath.Join(m.mountPoint, c.opts.Parent), cpuset: slices.Contains(m.superOpts, "cpuset")}
			if err := c.mkdirV1Parent(h); err != nil {
				d.unavailable[role] = err
				continue
			}
			byMount[m.mountPoint] = h
			order = append(order, h)
			d.created = append(d.created, h)
		}
		var missing []string
		for _, f := range cgV1Probe[role] {
			if !cgExists(filepath.Join(h.parent, f)) {
				missing = append(missing, filepath.Join(h.parent, f))
			}
		}
		if len(missing) > 0 {
			d.unavailable[role] = fmt.Errorf("cgroup v1 %s: missing %s", role, strings.Join(missing, ", "))
			continue
		}
		h.roles = append(h.roles, role)
		switch role {
		case cgRoleMemory, cgRolePids, cgRoleCPU:
			d.available[role] = MechCgroupV1
		case cgRoleFreezer:
			d.freezer = h
		}
	}
	for _, h := range order {
		// The freezer hierarchy joins the runs only when Kill uses it.
		if len(h.roles) > 0 && (len(h.roles) != 1 || h.roles[0] != cgRoleFreezer) {
			d.hiers = append(d.hiers, h)
		}
	}
	return d
}

// mkdirV1Parent makes h's parent cgroup; where cpuset is co-mounted each new
// level gets its parent's cpus and mems.
func (c *Cgroups) mkdirV1Parent(h *cgHierarchy) error {
	if err := c.mkdirAll(h.mount, h.parent); err != nil {
		return err
	}
	if !h.cpuset {
		return nil
	}
	rel, _ := filepath.Rel(h.mount, h.parent)
	cur := h.mount
	for comp := range strings.SplitSeq(rel, "/") {
		next := filepath.Join(cur, comp)
		if err := cgInitCpuset(cur, next); err != nil {
			return err
		}
		cur = next
	}
	return nil
}

// limitV1 writes into the run's v1 cgroups the limits of l that differ
// from those they hold.
func (g *Cgroup) limitV1(l Limits) error {
	have := g.limits
	if dir := g.dirFor(cgRolePids); l.Pids != have.Pids && dir != "" {
		if err := writeCgroupFile(filepath.Join(dir, "pids.max"), cgLimitValue(l.Pids, "max")); err != nil {
			return err
		}
		setEnforced(g.enforced, LimitPids, MechCgroupV1, l.Pids > 0)
	}
	if dir := g.dirFor(cgRoleMemory); l.MemoryBytes != have.MemoryBytes && dir != "" {
		v := cgLimitValue(l.MemoryBytes, "-1")
		mem := func() error { return writeCgroupFile(filepath.Join(dir, "memory.limit_in_bytes"), v) }
		memsw := func() error {
			err := writeCgroupFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), v)
			if err == nil || !errors.Is(err, os.ErrNotExist) {
				return err
			}
			// Without swap accounting (swapaccount=0) memsw is absent: then
			// keep the run out of swap with swappiness 0, if there is swap.
			if g.c.swapOn() {
				return writeCgroupFile(filepath.Join(dir, "memory.swappiness"), "0")
			}
			return nil
		}
		// memsw may never be below memory: lowering the limit writes
		// memory first, raising or lifting it memsw first.
		order := []func() error{mem, memsw}
		if l.MemoryBytes <= 0 || (have.MemoryBytes > 0 && l.MemoryBytes > have.MemoryBytes) {
			order = []func() error{memsw, mem}
		}
		for _, write := range order {
			if err := write(); err != nil {
				return err
			}
		}
		setEnforced(g.enforced, LimitMemory, MechCgroupV1, l.MemoryBytes > 0)
	}
	if dir := g.dirFor(cgRoleCPU); l.CPUMillis != have.CPUMillis && dir != "" {
		// The period is not written: a new cgroup has the kernel's
		// default, which is cfsPeriodMicros.
		if err := writeCgroupFile(filepath.Join(dir, "cpu.cfs_quota_us"), cgLimitValue(cfsQuota(l.CPUMillis), "-1")); err != nil {
			return err
		}
		setEnforced(g.enforced, LimitCPU, MechCgroupV1, l.CPUMillis > 0)
	}
	return nil
}

// statsV1 reads cpuacct.usage, memory.max_usage_in_bytes, memory.oom_control
// and pids.current.
func (g *Cgroup) statsV1(s *CgroupStats) error {
	if dir := g.dirFor(cgRoleCPUAcct); dir != "" {
		ns, err := readCgroupInt(filepath.Join(dir, "cpuacct.usage"))
		if err != nil {
			return err
		}
		s.CPUTime = time.Duration(ns)
	}
	if dir := g.dirFor(cgRoleMemory); dir != "" {
		peak, err := readCgroupInt(filepath.Join(dir, "memory.max_usage_in_bytes"))
		if err != nil {
			return err
		}
		s.PeakMemory = peak
		b, err := readCgroupFile(filepath.Join(dir, "memory.oom_control"))
		if err != nil {
			return err
		}
		// oom_kill is there since Linux 4.13.
		s.OOMKills = int(max(cgroupKeyed(b, "oom_kill"), 0))
	}
	return g.statsPids(s, g.dirFor(cgRolePids))
}
