package vigiltest

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// CPUTimes is a snapshot of the machine's CPU time counters (/proc/stat).
// On a virtual machine the hypervisor may run other guests on its cores:
// the time it takes is "steal", which no process here can see but which
// shows in every latency and throughput a benchmark measures meanwhile.
type CPUTimes struct {
	steal, idle, total uint64
	ok                 bool
}

// ReadCPUTimes reads the counters; on a system without /proc/stat the
// snapshot is empty and StealSince reports 0.
func ReadCPUTimes() CPUTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return CPUTimes{}
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 9 || string(f[0]) != "cpu" {
		return CPUTimes{}
	}
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest time is already counted in user and nice.
	var c CPUTimes
	for i, v := range f[1:9] {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return CPUTimes{}
		}
		c.total += n
		switch i {
		case 3, 4: // idle, iowait
			c.idle += n
		case 7:
			c.steal = n
		}
	}
	c.ok = true
	return c
}

// since returns the counters' growth since the snapshot c; ok is false
// when either snapshot is empty or no time has passed.
func (c CPUTimes) since() (d CPUTimes, ok bool) {
	now := ReadCPUTimes()
	if !c.ok || !now.ok || now.total <= c.total {
		return CPUTimes{}, false
	}
	return CPUTimes{steal: now.steal - c.steal, idle: now.idle - c.idle, total: now.total - c.total, ok: true}, true
}

// StealSince returns the share of the machine's CPU time, in percent, that
// the hypervisor took since the snapshot c: benchmarks report it beside
// their figures, which a high steal makes worse than the code is.
func (c CPUTimes) StealSince() float64 {
	d, ok := c.since()
	if !ok {
		return 0
	}
	return 100 * float64(d.steal) / float64(d.total)
}

// userHZ is the unit of /proc/stat's counters (USER_HZ, 100 on every
// Linux architecture that vigil builds for).
const userHZ = 100

// BusySince returns the CPU time all cores spent running anything (not
// idle, not stolen) since the snapshot c, summed over cores: divided by a
// count of operations it gives the machine's CPU cost of one, a figure
// that steal, unlike a rate, does not lower.
func (c CPUTimes) BusySince() time.Duration {
	d, ok := c.since()
	if !ok {
		return 0
	}
	return time.Duration(d.total-d.idle-d.steal) * time.Second / userHZ
}
