package runner

import (
	"bufio"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The warm pool: one fork server (zygote.py) per interpreter, started in a
// sandbox shim with the SDK and common modules imported. Each run is a fresh
// fork of it (through a slot: a pid namespace whose init serves run after
// run), in its own namespaces and cgroup, so a run skips Python's start-up
// and no process ever runs two scripts.

//go:embed zygote.py
var zygoteSource string

// Bounds of the warm pool.
const (
	// zygoteMaxRuns and zygoteMaxAge retire a fork server, so that runs do
	// not share its hash seed and heap layout for ever.
	zygoteMaxRuns = 10000
	zygoteMaxAge  = time.Hour
	// zygoteReady bounds a fork server's start-up.
	zygoteReady = 30 * time.Second
	// zygoteRetry is how long an interpreter whose fork server failed
	// runs cold before the next try.
	zygoteRetry = time.Minute
	// warmParked is how many runs each fork server keeps prepared per
	// network mode: with two, runs back to back could find none ready
	// (preparing one takes several milliseconds of low-priority work), and
	// their p99 from request to first line was higher by a third.
	warmParked = 3
	// forkTimeout bounds the wait for a fork server's answer to a run.
	forkTimeout = 5 * time.Second
)

// warmSlotIdle is how long a fork server keeps a slot (a pid namespace and
// its init, which serve run after run) that no run uses.
var warmSlotIdle = time.Minute

var errZygoteGone = errors.New("the warm pool's fork server is gone")

// warmPool holds the fork servers and the runs they prepared ahead.
type warmPool struct {
	exe, sdkDir string
	socket      string // the API socket runs without a network get
	hide        []string
	cgroups     *Cgroups // nil: no cgroups
	parkLimits  Limits   // the limits a prepared run's cgroup gets: the defaults
	parkSize    int      // runs prepared ahead per interpreter and network mode
	maxRuns     int      // a fork server retires after this many runs
	maxAge      time.Duration
	log         *slog.Logger

	mu       sync.Mutex
	servers  map[string]*zygote   // interpreter → current server
	failed   map[string]time.Time // interpreter → when it last failed
	parked   map[parkKey][]*parked
	inflight map[parkKey]int
	closed   bool
	wg       sync.WaitGroup
}

type parkKey struct {
	interp  string
	network bool
}

func newWarmPool(exe, sdkDir, socket string, hide []string, cgroups *Cgroups, parkSize int, log *slog.Logger) *warmPool {
	return &warmPool{
		exe: exe, sdkDir: sdkDir, socket: socket, hide: hide, cgroups: cgroups, parkSize: parkSize, log: log,
		parkLimits: ControlScriptSpec{}.WithDefaults().Limits.cgroup(),
		maxRuns:    zygoteMaxRuns, maxAge: zygoteMaxAge,
		servers: map[string]*zygote{}, failed: map[string]time.Time{},
		parked: map[parkKey][]*parked{}, inflight: map[parkKey]int{},
	}
}

// take returns a run prepared by interp's fork server, or nil when there
// is no ready server (the run then starts cold). It prepares one now when
// none is waiting, and more in the background.
func (p *warmPool) take(interp string, network bool) *parked {
	z := p.get(interp)
	if z == nil {
		return nil
	}
	key := parkKey{interp, network}
	p.mu.Lock()
	var pk *parked
	for len(p.parked[key]) > 0 && pk == nil {
		l := p.parked[key]
		c := l[0]
		p.parked[key] = l[1:]
		if c.z != z || c.exited() {
			p.discard(c)
			continue
		}
		pk = c
	}
	cgroups := p.cgroups
	if pk != nil {
		// Its replacement is prepared once this run is under way: forking
		// and building a sandbox now would take the CPU the run needs to
		// reach its first instruction.
		pk.replace = sync.OnceFunc(func() { p.refill(key) })
		p.mu.Unlock()
		return pk
	}
	p.refillLocked(key, z)
	p.mu.Unlock()
	pk, err := z.park(parkID(), network, cgroups, p.parkLimits)
	if err != nil {
		p.log.Warn("warm pool: prepare a run; it starts cold", "err", err)
		return nil
	}
	return pk
}

// refill prepares runs for key in the background up to parkSize, with
// the interpreter's current server (which may have replaced the one a
// taken run came from).
func (p *warmPool) refill(key parkKey) {
	z := p.get(key.interp)
	if z == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.servers[key.interp] == z {
		p.refillLocked(key, z)
	}
}

// refillLocked prepares runs in the background up to parkSize.
func (p *warmPool) refillLocked(key parkKey, z *zygote) {
	for !p.closed && len(p.parked[key])+p.inflight[key] < p.parkSize {
		p.inflight[key]++
		p.wg.Add(1)
		cgroups := p.cgroups
		go func() {
			defer p.wg.Done()
			pk, err := z.park(parkID(), key.network, cgroups, p.parkLimits)
			p.mu.Lock()
			defer p.mu.Unlock()
			p.inflight[key]--
			if err == nil && !p.closed && p.servers[key.interp] == z {
				p.parked[key] = append(p.parked[key], pk)
				return
			}
			if err == nil {
				p.discard(pk)
			} else if !errors.Is(err, errZygoteGone) {
				p.log.Warn("warm pool: prepare a run", "err", err)
			}
			// If its server was replaced meanwhile, the place is the new one's.
			if cur := p.servers[key.interp]; !p.closed && cur != nil && cur != z && cur.isReady() {
				p.refillLocked(key, cur)
			}
		}()
	}
}

// parkID names a prepared run and its cgroup until its execution is known.
func parkID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "warm-" + hex.EncodeToString(b[:])
}

// get returns interp's ready fork server, or nil; it starts one in the
// background when there is none, or when the current one is due to retire.
func (p *warmPool) get(interp string) *zygote {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	z := p.servers[interp]
	if z != nil && z.isDead() {
		delete(p.servers, interp)
		z = nil
	}
	if z == nil {
		if t, ok := p.failed[interp]; ok && time.Since(t) < zygoteRetry {
			return nil
		}
		p.startLocked(interp, nil)
		return nil
	}
	if !z.isReady() {
		return nil
	}
	if z.due(p.maxRuns, p.maxAge) && !z.replacing {
		z.replacing = true
		p.startLocked(interp, z)
	}
	return z
}

// startLocked starts a fork server for interp in the background; once it
// is ready it replaces old, which then retires.
func (p *warmPool) startLocked(interp string, old *zygote) {
	z, err := startZygote(p.exe, interp, p.sdkDir, p.socket, p.hide, p.log)
	if err != nil {
		p.failed[interp] = time.Now()
		p.log.Warn("warm pool: start fork server; runs start cold", "interpreter", interp, "err", err)
		return
	}
	if old == nil {
		p.servers[interp] = z
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		err := z.waitReady()
		p.mu.Lock()
		defer p.mu.Unlock()
		if err != nil {
			p.failed[interp] = time.Now()
			if p.servers[interp] == z {
				delete(p.servers, interp)
			}
			if old != nil {
				old.replacing = false
			}
			p.log.Warn("warm pool: fork server did not start; runs start cold", "interpreter", interp, "err", err)
			z.close()
			return
		}
		delete(p.failed, interp)
		z.mu.Lock()
		z.log.Info("warm pool: fork server ready", "python", z.python, "took", time.Since(z.started).Round(time.Millisecond).String())
		z.mu.Unlock()
		if p.closed {
			z.close()
			return
		}
		p.servers[interp] = z
		if old != nil {
			// Its prepared runs would keep it from exiting; the new server
			// prepares their replacements.
			for k, l := range p.parked {
				kept := l[:0]
				for _, pk := range l {
					if pk.z == old {
						p.discard(pk)
					} else {
						kept = append(kept, pk)
					}
				}
				p.parked[k] = kept
				if k.interp == interp {
					p.refillLocked(k, z)
				}
			}
			old.retire()
		}
		// Runs with a network are the default: prepare some now, so that
		// even the first run is warm.
		p.refillLocked(parkKey{interp, true}, z)
	}()
}

// warmUp starts interp's fork server ahead of its first run.
func (p *warmPool) warmUp(interp string) { p.get(interp) }

// close retires every fork server; runs in flight finish first.
func (p *warmPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	all := make([]*zygote, 0, len(p.servers))
	for _, z := range p.servers {
		all = append(all, z)
	}
	for k, l := range p.parked {
		for _, pk := range l {
			p.discard(pk)
		}
		delete(p.parked, k)
	}
	p.mu.Unlock()
	p.wg.Wait() // the discards
	for _, z := range all {
		z.retire()
	}
}

// zygote is one fork server and the runs it forked.
type zygote struct {
	interp  string
	socket  string
	cmd     *exec.Cmd
	ctl     *net.UnixConn
	started time.Time
	log     *slog.Logger

	ready     chan error // one value: nil or why it failed
	dead      chan struct{}
	replacing bool // guarded by warmPool.mu

	mu      sync.Mutex
	runs    map[string]*warmRun
	served  int
	python  string
	up      bool
	retired bool
}

// warmRun is the fork server's side of one run.
type warmRun struct {
	forked chan error
	exited chan unix.WaitStatus
}

// startZygote starts a fork server in its sandbox: root, its own pid and
// mount namespaces, the data directory hidden, the SDK at /run/vigil/sdk.
func startZygote(exe, interp, sdkDir, socket string, hide []string, log *slog.Logger) (*zygote, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "zygote-ctl"), os.NewFile(uintptr(fds[1]), "zygote-ctl")
	defer theirs.Close()
	conn, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	spec := SandboxSpec{
		Argv:       []string{interp, "-u", "-c", zygoteSource},
		Env:        append(baseEnv(), fmt.Sprintf("VIGIL_SLOT_IDLE_SECONDS=%g", warmSlotIdle.Seconds())),
		Dir:        "/tmp",
		UID:        -1,
		GID:        -1,
		Hide:       hide,
		Network:    true,
		NoNewPrivs: true,
		Binds:      []Bind{{Source: sdkDir, Target: sandboxSDK, ReadOnly: true}},
		BindSocket: socket,
	}
	cmd, send, err := Command(exe, spec)
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, logW, logW
	err = cmd.Start()
	logW.Close()
	if err != nil {
		send()
		_ = conn.Close()
		logR.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	z := &zygote{
		interp: interp, socket: socket, cmd: cmd, ctl: conn.(*net.UnixConn), started: time.Now(),
		log:   log.With("interpreter", interp, "pid", cmd.Process.Pid),
		ready: make(chan error, 1), dead: make(chan struct{}), runs: map[string]*warmRun{},
	}
	go func() {
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			z.log.Warn("warm pool: fork server says", "line", sc.Text())
		}
		logR.Close()
	}()
	go func() {
		st := send()
		err := cmd.Wait()
		z.shut(fmt.Errorf("fork server exited: %w %s", err, st.Error))
	}()
	go z.read()
	return z, nil
}

func (z *zygote) waitReady() error {
	t := time.NewTimer(zygoteReady)
	defer t.Stop()
	select {
	case err := <-z.ready:
		return err
	case <-t.C:
		return errors.New("not ready in time")
	}
}

func (z *zygote) isReady() bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.up && !z.retired
}

func (z *zygote) isDead() bool {
	select {
	case <-z.dead:
		return true
	default:
		return false
	}
}

// due reports whether the server has served long enough.
func (z *zygote) due(maxRuns int, maxAge time.Duration) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.served >= maxRuns || time.Since(z.started) >= maxAge
}

// retire stops new runs; the server exits once its runs have ended.
func (z *zygote) retire() {
	z.mu.Lock()
	z.retired = true
	z.mu.Unlock()
	_ = z.ctl.CloseWrite()
}

// close kills the server, and with it every run it forked.
func (z *zygote) close() {
	z.retire()
	_ = z.cmd.Process.Kill()
}

// zmsg is a message on the control socket.
type zmsg struct {
	Op      string `json:"op"`
	ID      string `json:"id,omitempty"`
	Network bool   `json:"network,omitempty"`
	Socket  bool   `json:"socket,omitempty"`
	Sig     int    `json:"sig,omitempty"`
	Python  string `json:"python,omitempty"`
	Error   string `json:"error,omitempty"`
	Status  *int   `json:"status,omitempty"`

	CgroupProcs []string `json:"cgroup_procs,omitempty"`
}

// read dispatches the server's messages until it is gone.
func (z *zygote) read() {
	buf := make([]byte, 64<<10)
	for {
		n, _, _, _, err := z.ctl.ReadMsgUnix(buf, nil)
		if err != nil || n == 0 {
			z.shut(errZygoteGone)
			return
		}
		var m zmsg
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			z.log.Warn("warm pool: bad message from fork server", "err", err)
			continue
		}
		z.mu.Lock()
		run := z.runs[m.ID]
		switch m.Op {
		case "ready":
			if !z.up {
				z.python, z.up = m.Python, true
				z.ready <- nil
			}
		case "forked":
			if run != nil {
				run.forked <- nil
			}
		case "error":
			if run != nil {
				run.forked <- errors.New(m.Error)
				delete(z.runs, m.ID)
			}
		case "exited":
			if run != nil && m.Status != nil {
				run.exited <- unix.WaitStatus(*m.Status)
				delete(z.runs, m.ID)
			}
		}
		z.mu.Unlock()
	}
}

// shut marks the server dead; runs waiting on it learn it.
func (z *zygote) shut(why error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	select {
	case <-z.dead:
		return
	default:
	}
	close(z.dead)
	if !z.up {
		z.ready <- why
	}
	z.up = false
	_ = z.ctl.Close()
	_ = z.cmd.Process.Kill()
}

// send writes one control message with descriptors.
func (z *zygote) send(m zmsg, files ...*os.File) error {
	b, _ := json.Marshal(m)
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	_, _, err := z.ctl.WriteMsgUnix(b, oob, nil)
	return err
}

// warmProc is a run forked by a fork server.
type warmProc struct {
	z              *zygote
	id             string
	run            *warmRun
	stdout, stderr *os.File
	statusR        *os.File
	statusOnce     sync.Once
	st             ShimStatus
	// replace, set by take, prepares the run that replaces this one in the
	// pool; it is called once the script has started, or when the run
	// failed or was discarded. nil for a run not taken.
	replace func()
}

// parked is a run prepared ahead: its script's process, forked by a
// slot's init, has built the run's namespaces and mounts and sits in cgroup
// cg (nil without cgroups), which holds the default limits, waiting for the
// spec on specW.
type parked struct {
	*warmProc
	network bool
	cg      *Cgroup
	specW   *os.File
}

// park prepares a run; id names it and its cgroup until the run is known,
// and the cgroup gets limits, those of most runs: a run that has them
// writes none on its way to its first instruction.
func (z *zygote) park(id string, network bool, cgroups *Cgroups, limits Limits) (pk *parked, err error) {
	var cg *Cgroup
	if cgroups != nil {
		if cg, err = cgroups.Create(id, limits); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				_ = cg.Remove()
			}
		}()
	}
	var mine, theirs []*os.File // the ends we keep; what the server gets
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
		if err != nil {
			for _, f := range mine {
				f.Close()
			}
		}
	}()
	var ends [4][2]*os.File // spec, stdout, stderr, status: read, write
	for i := range ends {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("pipe: %w", err)
		}
		ends[i] = [2]*os.File{r, w}
		if i == 0 {
			mine, theirs = append(mine, w), append(theirs, r)
		} else {
			mine, theirs = append(mine, r), append(theirs, w)
		}
	}
	m := zmsg{Op: "run", ID: id, Network: network, Socket: !network && z.socket != ""}
	if cg != nil {
		m.CgroupProcs = cg.ProcsFiles()
	}
	run := &warmRun{forked: make(chan error, 1), exited: make(chan unix.WaitStatus, 1)}
	z.mu.Lock()
	if !z.up || z.retired {
		z.mu.Unlock()
		return nil, errZygoteGone
	}
	z.runs[id] = run
	z.served++
	z.mu.Unlock()
	forget := func() {
		z.mu.Lock()
		delete(z.runs, id)
		z.mu.Unlock()
	}
	if err := z.send(m, theirs...); err != nil {
		forget()
		return nil, fmt.Errorf("send run: %w", err)
	}
	t := time.NewTimer(forkTimeout)
	defer t.Stop()
	select {
	case err := <-run.forked:
		if err != nil {
			return nil, fmt.Errorf("fork: %w", err)
		}
	case <-z.dead:
		forget()
		return nil, errZygoteGone
	case <-t.C:
		// It may still fork: make sure that run dies.
		_ = z.send(zmsg{Op: "signal", ID: id, Sig: int(unix.SIGKILL)})
		forget()
		return nil, errors.New("fork: no answer in time")
	}
	wp := &warmProc{z: z, id: id, run: run, stdout: ends[1][0], stderr: ends[2][0], statusR: ends[3][0]}
	return &parked{warmProc: wp, network: network, cg: cg, specW: ends[0][1]}, nil
}

// exited reports whether the parked run died before its use.
func (p *parked) exited() bool {
	select {
	case ws := <-p.run.exited:
		p.run.exited <- ws
		return true
	case <-p.z.dead:
		return true
	default:
		return false
	}
}

// start gives the parked run its spec and script; the caller has set the
// cgroup's limits. After an error the run must be discarded.
func (p *parked) start(spec SandboxSpec, script []byte) error {
	spec, err := spec.withDefaults()
	if err != nil {
		return err
	}
	if spec.Network != p.network {
		return fmt.Errorf("a run parked with network %v cannot run a spec with network %v", p.network, spec.Network)
	}
	doc, err := json.Marshal(struct {
		Spec   SandboxSpec `json:"spec"`
		Script []byte      `json:"script"`
	}{spec, script})
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	// The spec may hold more than a pipe's buffer; the script's process
	// reads it all.
	go func() {
		_, _ = p.specW.Write(doc)
		p.specW.Close()
	}()
	return nil
}

// firstRead calls fn once the first bytes have been read from r.
type firstRead struct {
	r    io.Reader
	fn   func()
	done bool
}

func (f *firstRead) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 && !f.done {
		f.done = true
		f.fn()
	}
	return n, err
}

// discard kills an unused prepared run and removes its cgroup, in the
// background; close waits for it.
func (p *warmPool) discard(pk *parked) {
	if pk.replace != nil {
		go pk.replace() // it takes p.mu, which some callers hold
	}
	pk.Signal(unix.SIGKILL)
	pk.specW.Close()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_, _ = pk.waitInit()
		pk.stdout.Close()
		pk.stderr.Close()
		pk.statusR.Close()
		if pk.cg != nil {
			if err := pk.cg.Remove(); err != nil {
				p.log.Warn("warm pool: remove a prepared run's cgroup", "err", err)
			}
		}
	}()
}

// Signal sends sig to the run's init, which forwards it to the script;
// SIGKILL ends the whole run.
func (p *warmProc) Signal(sig syscall.Signal) {
	_ = p.z.send(zmsg{Op: "signal", ID: p.id, Sig: int(sig)})
}

// waitInit returns the run's end as its pid 1's wait status: its slot's init
// reports the status a cold run's shim would exit with once it has reaped the
// run, or the init's own if it died. ok is false when the fork server died
// first (and took the run with it).
func (p *warmProc) waitInit() (ws unix.WaitStatus, ok bool) {
	select {
	case ws := <-p.run.exited:
		return ws, true
	case <-p.z.dead:
		select {
		case ws := <-p.run.exited:
			return ws, true
		default:
			return 0, false
		}
	}
}

// shimStatus reads the run's status lines until EOF.
func (p *warmProc) shimStatus() ShimStatus {
	p.statusOnce.Do(func() {
		var r io.Reader = p.statusR
		if p.replace != nil {
			// The first status line says the script started, or why not.
			r = &firstRead{r: r, fn: p.replace}
		}
		p.st = readStatus(r)
		p.statusR.Close()
		if p.replace != nil {
			p.replace()
		}
	})
	return p.st
}

// warmable reports whether a run can take the warm path: the interpreter
// must start exactly as the fork server did, so the script's environment
// must not set what Python reads at start-up.
func warmable(userEnv map[string]string) bool {
	for k := range userEnv {
		if strings.HasPrefix(k, "PYTHON") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "PATH" || k == "HOME" {
			return false
		}
	}
	return true
}
