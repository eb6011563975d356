package runner

import (
	"log/slog"
	"sync"

	"golang.org/x/sys/unix"
)

// shimPool keeps a few shims started ahead of their runs, one set per
// network mode, so a run's critical path skips the shim's start-up. A shim
// serves exactly one run.
type shimPool struct {
	exe  string
	size int
	log  *slog.Logger

	mu     sync.Mutex
	idle   map[bool][]*Prestarted
	closed bool
	wg     sync.WaitGroup
}

func newShimPool(exe string, size int, log *slog.Logger) *shimPool {
	p := &shimPool{exe: exe, size: size, log: log, idle: map[bool][]*Prestarted{}}
	for _, network := range []bool{true, false} {
		p.refill(network)
	}
	return p
}

// take returns a started shim for the network mode, starting one now when
// none is ready.
func (p *shimPool) take(network bool) (*Prestarted, error) {
	p.mu.Lock()
	for len(p.idle[network]) > 0 {
		l := p.idle[network]
		sh := l[len(l)-1]
		p.idle[network] = l[:len(l)-1]
		if !alive(sh.Cmd.Process.Pid) {
			go sh.Discard() // died while it waited
			continue
		}
		p.mu.Unlock()
		p.refill(network)
		return sh, nil
	}
	p.mu.Unlock()
	p.refill(network)
	return Prestart(p.exe, network)
}

// refill starts shims in the background up to the pool's size.
func (p *shimPool) refill(network bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.size <= 0 {
		return
	}
	missing := p.size - len(p.idle[network])
	for range missing {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			sh, err := Prestart(p.exe, network)
			if err != nil {
				p.log.Warn("prestart sandbox shim", "err", err)
				return
			}
			p.mu.Lock()
			if p.closed || len(p.idle[network]) >= p.size {
				p.mu.Unlock()
				sh.Discard()
				return
			}
			p.idle[network] = append(p.idle[network], sh)
			p.mu.Unlock()
		}()
	}
}

// close kills the idle shims.
func (p *shimPool) close() {
	p.mu.Lock()
	p.closed = true
	var all []*Prestarted
	for k, l := range p.idle {
		all = append(all, l...)
		delete(p.idle, k)
	}
	p.mu.Unlock()
	p.wg.Wait()
	for _, sh := range all {
		sh.Discard()
	}
}

// alive reports whether the child pid has not exited, without reaping it.
func alive(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	if err != nil {
		return false
	}
	// With WNOHANG, a child that has not exited leaves info zeroed.
	return info.Signo == 0
}
