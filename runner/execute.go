package runner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilhq/vigil/config"
)

// Mechanisms that are not cgroups.
const (
	MechRlimitAS     = "rlimit-as"
	MechRlimitNproc  = "rlimit-nproc"
	MechRlimitCPU    = "rlimit-cpu+timeout"
	MechRlimitNofile = "rlimit-nofile"
	MechCapture      = "capture-cap"
	MechNetNS        = "netns"
)

// Paths inside the sandbox.
const (
	sandboxScript = "/run/vigil/controlscript.py"
	sandboxSDK    = "/run/vigil/sdk"
	sandboxSocket = "/run/vigil/api.sock"
)

// run executes one attempt and records it; it never returns an error: every
// outcome is a status on the record.
func (r *Runner) run(ctx context.Context, ex *Execution, rev uint64, obj *config.Object, spec ControlScriptSpec) (started bool) {
	now := r.opts.Now().UTC()
	ex.Status, ex.Started, ex.Runner = StatusRunning, &now, r.opts.ID
	// The record must still be the queued one read at revision rev. It is
	// written while the sandbox gets ready, and the script released only
	// once it is: a cancel that came first wins.
	recorded := make(chan error, 1)
	snap := *ex // execute fills ex meanwhile
	go func() {
		_, err := r.update(context.Background(), &snap, rev)
		recorded <- err
	}()
	release := sync.OnceValue(func() error {
		err := <-recorded
		if errors.Is(err, errRecordChanged) {
			return err
		}
		if err != nil {
			r.log.Error("record run start", "id", ex.ID, "err", err)
		}
		return nil
	})
	res := r.execute(ctx, ex, spec, release)
	if release() != nil {
		return false // nothing ran; the record is someone else's
	}
	end := r.opts.Now().UTC()
	ex.Finished = &end
	if res != nil {
		ex.Status, ex.Reason = StatusRejected, res.Error()
	}
	if err := r.save(context.Background(), ex); err != nil {
		r.log.Error("record run end", "id", ex.ID, "err", err)
	}
	r.log.Info("run ended", "id", ex.ID, "script", ex.Script, "status", ex.Status, "reason", ex.Reason)
	r.publishResult(context.Background(), ex)
	return true
}

// execute runs the script in its sandbox and fills the record. An error
// means the run could not be set up and is rejected. The script is released
// only if release, called once the sandbox is ready, returns nil.
func (r *Runner) execute(ctx context.Context, ex *Execution, spec ControlScriptSpec, release func() error) error {
	src := []byte(spec.Source)
	if spec.File != "" {
		var err error
		if src, err = os.ReadFile(spec.File); err != nil {
			return fmt.Errorf("read script: %w", err)
		}
	}
	secretEnv, secretVals, err := r.secrets(ctx, spec.Secrets)
	if err != nil {
		return err
	}
	lim := spec.Limits
	network := lim.Network == nil || *lim.Network
	// A warm run was prepared ahead, its process waiting in a cgroup with no
	// limits yet; a cold one gets its script file and cgroup now.
	var pk *parked
	// Only vigil's own default interpreter gets a fork server: it runs as
	// root in its sandbox, so a script's choice of binary must not.
	if r.warm != nil && spec.Interpreter == DefaultInterpreter() && warmable(spec.Env) {
		pk = r.warm.take(spec.Interpreter, network)
		ex.Warm = pk != nil
	}
	used := false
	defer func() {
		if pk != nil && !used {
			r.warm.discard(pk)
		}
	}()
	scriptPath := ""
	if pk == nil {
		dir := filepath.Join(r.opts.RunDir, ex.ID)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("run dir: %w", err)
		}
		defer os.RemoveAll(dir)
		scriptPath = filepath.Join(dir, "controlscript.py")
		if err := os.WriteFile(scriptPath, src, 0o644); err != nil {
			return fmt.Errorf("write script: %w", err)
		}
	}

	timeout := spec.Timeout.D()
	token, revoke := "", func() {}
	if r.opts.Tokens != nil {
		if token, revoke, err = r.opts.Tokens.Issue(ctx, ex.ID, timeout+r.opts.TermGrace+time.Minute); err != nil {
			return fmt.Errorf("issue token: %w", err)
		}
	}
	defer revoke()

	enforced := map[string]string{}
	var rlimits []Rlimit
	var cg *Cgroup
	limits := lim.cgroup()
	switch {
	case pk != nil && pk.cg != nil:
		// Named when it was made, before its run was known (cgroup v2
		// cannot rename); the record gives the name. It holds the default
		// limits: a script with other limits has them written now.
		cg = pk.cg
		ex.Cgroup = cg.Name()
		if err := cg.Limit(limits); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
	case r.cgroups != nil && pk == nil:
		cg, err = r.cgroups.Create(ex.ID, limits)
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	if cg != nil {
		ex.Cgroup = cg.Name()
		defer func() {
			if err := cg.Remove(); err != nil {
				r.log.Error("remove run cgroup", "id", ex.ID, "err", err)
			}
		}()
		for k, v := range cg.Enforced() {
			enforced[k] = v
		}
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		if uid, gid, err = SandboxUser(); err != nil {
			return fmt.Errorf("sandbox user: %w", err)
		}
	}
	// Fail closed: a limit without a cgroup falls back to its rlimit, and a
	// limit with neither rejects the run.
	if enforced["memory"] == "" {
		rlimits = append(rlimits, Rlimit{Resource: unix.RLIMIT_AS, Cur: uint64(lim.Memory), Max: uint64(lim.Memory)})
		enforced["memory"] = MechRlimitAS
	}
	if enforced["pids"] == "" {
		if uid <= 0 && os.Geteuid() == 0 {
			return errors.New("no mechanism enforces limits.pids: no pids cgroup, and RLIMIT_NPROC does not bind root")
		}
		rlimits = append(rlimits, Rlimit{Resource: unix.RLIMIT_NPROC, Cur: uint64(lim.Pids), Max: uint64(lim.Pids)})
		enforced["pids"] = MechRlimitNproc
	}
	if enforced["cpu"] == "" {
		secs := uint64(timeout.Seconds()) + 1
		rlimits = append(rlimits, Rlimit{Resource: unix.RLIMIT_CPU, Cur: secs, Max: secs + 1})
		enforced["cpu"] = MechRlimitCPU
	}
	rlimits = append(rlimits,
		Rlimit{Resource: unix.RLIMIT_NOFILE, Cur: uint64(lim.OpenFiles), Max: uint64(lim.OpenFiles)},
		Rlimit{Resource: unix.RLIMIT_CORE, Cur: 0, Max: 0})
	enforced["open_files"] = MechRlimitNofile
	enforced["output"] = MechCapture
	if !network {
		enforced["network"] = MechNetNS
	}
	ex.Enforcement = enforced

	env := r.env(ex, spec, token, network)
	env = append(env, secretEnv...)
	sb := SandboxSpec{
		Argv:       []string{spec.Interpreter, "-u", sandboxScript, string(alertArg(ex))},
		Env:        env,
		Dir:        "/tmp",
		UID:        uid,
		GID:        gid,
		Rlimits:    rlimits,
		TmpSize:    DefaultTmpSize,
		Hide:       hidden(r.opts.DataDir),
		Network:    network,
		NoNewPrivs: true,
		Binds:      []Bind{{Source: r.sdkDir, Target: sandboxSDK, ReadOnly: true}},
	}
	if cg != nil {
		sb.CgroupProcs = cg.ProcsFiles()
	}
	if !network && r.opts.APISocket != "" {
		sb.BindSocket = r.opts.APISocket
	}
	if err := release(); err != nil {
		return err
	}
	var proc runProc
	if pk != nil {
		// The script travels with the spec; the fork server has the SDK.
		if err := pk.start(sb, src); err != nil {
			return fmt.Errorf("start sandbox: %w", err)
		}
		proc, used = pk.warmProc, true
	} else {
		sb.Binds = append([]Bind{{Source: scriptPath, Target: sandboxScript, ReadOnly: true}}, sb.Binds...)
		sh, err := r.shims.take(network)
		if err != nil {
			return fmt.Errorf("start sandbox: %w", err)
		}
		send, err := sh.Send(sb)
		if err != nil {
			sh.Discard()
			return err
		}
		proc = &coldProc{sh: sh, send: send}
	}
	stdout := newCapture(int(lim.Output))
	stderr := newCapture(int(lim.Output))
	var copies sync.WaitGroup
	outR, errR := proc.output()
	for _, c := range []struct {
		dst *capture
		src *os.File
	}{{stdout, outR}, {stderr, errR}} {
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(c.dst, c.src)
			c.src.Close()
		}()
	}
	stopLive := r.liveOutput(ex, stdout, stderr, secretVals)
	status := make(chan ShimStatus, 1)
	go func() { status <- proc.status() }()
	type result struct {
		ws  unix.WaitStatus
		err error
	}
	waited := make(chan result, 1)
	go func() {
		ws, err := proc.wait()
		copies.Wait() // the pipes end once every process of the run is gone
		waited <- result{ws, err}
	}()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var why error
	var res result
	select {
	case res = <-waited:
	case <-deadline.C:
		why = errTimeout
	case <-ctx.Done():
		why = context.Cause(ctx)
	}
	if why != nil {
		// Ask nicely, then kill the whole tree.
		proc.signal(syscall.SIGTERM)
		select {
		case res = <-waited:
		case <-time.After(r.opts.TermGrace):
			if cg != nil {
				_ = cg.Kill()
			}
			proc.signal(syscall.SIGKILL)
			res = <-waited
		}
	}
	stopLive()
	st := <-status
	if st.Started != nil {
		ex.FirstLine = st.Started
	}
	if cg != nil {
		if s, err := cg.Stats(); err == nil {
			ex.CPUTimeMS = s.CPUTime.Milliseconds()
			ex.PeakMemory = s.PeakMemory
			if s.OOMKills > 0 && why == nil {
				why = errOOM
			}
		}
	} else {
		cpu, rss := proc.usage(st)
		ex.CPUTimeMS, ex.PeakMemory = cpu.Milliseconds(), rss
	}
	ex.KilledDescendants = st.Orphans
	ex.Stdout, ex.StdoutTruncated = stdout.result(secretVals)
	ex.Stderr, ex.StderrTruncated = stderr.result(secretVals)
	classify(ex, res.ws, res.err, why, st)
	return nil
}

// runProc is a started run: a cold shim or a warm fork.
type runProc interface {
	// output returns the read ends of the script's stdout and stderr.
	output() (stdout, stderr *os.File)
	// status returns the run's status lines once they end.
	status() ShimStatus
	// wait returns once the run's pid 1 has exited.
	wait() (unix.WaitStatus, error)
	// signal signals the script (SIGKILL: the whole run).
	signal(sig syscall.Signal)
	// usage is the CPU time and peak memory when no cgroup measured them.
	usage(st ShimStatus) (time.Duration, int64)
}

// coldProc is a run in a freshly started interpreter under a shim.
type coldProc struct {
	sh   *Prestarted
	send func() ShimStatus
}

func (p *coldProc) output() (*os.File, *os.File) { return p.sh.Stdout, p.sh.Stderr }
func (p *coldProc) status() ShimStatus           { return p.send() }

func (p *coldProc) wait() (unix.WaitStatus, error) {
	err := p.sh.Cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		return unix.WaitStatus(ws), nil
	}
	return 0, err
}

func (p *coldProc) signal(sig syscall.Signal) {
	if sig == syscall.SIGKILL {
		_ = p.sh.Cmd.Process.Kill()
		return
	}
	_ = p.sh.Cmd.Process.Signal(sig)
}

func (p *coldProc) usage(ShimStatus) (time.Duration, int64) {
	ps := p.sh.Cmd.ProcessState
	if ps == nil {
		return 0, 0
	}
	var rss int64
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10
	}
	return ps.UserTime() + ps.SystemTime(), rss
}

func (p *warmProc) output() (*os.File, *os.File) { return p.stdout, p.stderr }
func (p *warmProc) status() ShimStatus           { return p.shimStatus() }

func (p *warmProc) wait() (unix.WaitStatus, error) {
	ws, ok := p.waitInit()
	if !ok {
		return 0, errZygoteGone
	}
	return ws, nil
}

func (p *warmProc) signal(sig syscall.Signal) { p.Signal(sig) }

func (p *warmProc) usage(st ShimStatus) (time.Duration, int64) { return st.CPUTime, st.MaxRSS }

var (
	errTimeout = errors.New("timeout")
	errOOM     = errors.New("out of memory")
)

// classify sets the status, exit code and signal from how the run ended:
// ws is the wait status of the run's pid 1 (the shim; for a warm run, what
// its slot's init reports),
// werr why it could not be waited for.
func classify(ex *Execution, ws unix.WaitStatus, werr, why error, st ShimStatus) {
	if werr != nil {
		ex.Status, ex.Reason = StatusFailed, werr.Error()
		if errors.Is(werr, errZygoteGone) {
			ex.Status = StatusKilled
		}
		return
	}
	code := 0
	if ws.Signaled() {
		ex.Signal = unix.SignalName(ws.Signal())
	} else {
		code = ws.ExitStatus()
	}
	if st.Error != "" {
		ex.Status, ex.Reason = StatusRejected, "sandbox: "+st.Error
		return
	}
	if ex.Signal == "" {
		// The shim exits with 128+n when the script died of signal n.
		if code > 128 && code < 128+65 {
			ex.Signal = unix.SignalName(syscall.Signal(code - 128))
		}
		c := code
		ex.ExitCode = &c
	}
	switch {
	case errors.Is(why, errTimeout):
		ex.Status, ex.Reason = StatusTimeout, "ran past its timeout"
	case errors.Is(why, errOOM):
		ex.Status, ex.Reason = StatusOOM, "killed for using more memory than limits.memory"
	case errors.Is(why, errCancelled):
		ex.Status, ex.Reason = StatusCancelled, errCancelled.Error()
	case errors.Is(why, errStopping):
		ex.Status, ex.Reason = StatusKilled, errStopping.Error()
	case ex.Signal != "":
		ex.Status, ex.Reason = StatusKilled, "killed by "+ex.Signal
		if ex.Signal == "SIGXCPU" {
			ex.Status, ex.Reason = StatusTimeout, "used up its CPU time (RLIMIT_CPU)"
		}
	case code != 0:
		ex.Status = StatusFailed
	default:
		ex.Status = StatusSucceeded
	}
}

// alertArg is sys.argv[1]: the alert JSON, or an empty object.
func alertArg(ex *Execution) []byte {
	if len(ex.Alert) == 0 {
		return []byte("{}")
	}
	return ex.Alert
}

// baseEnv is the part of every run's environment that Python reads at
// start-up; the warm pool's fork servers start with it.
func baseEnv() []string {
	return []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
		"PYTHONPATH=" + sandboxSDK,
	}
}

// env builds the contract's environment.
func (r *Runner) env(ex *Execution, spec ControlScriptSpec, token string, network bool) []string {
	user := ex.TriggeredBy
	if user == "" {
		user = "admin"
	}
	apiURL := r.opts.APIURL
	gateway := ""
	if u, err := url.Parse(apiURL); err == nil {
		gateway = u.Hostname()
	}
	env := append(baseEnv(),
		"API_TOKEN="+token, "VIGIL_API_TOKEN="+token,
		"USER="+user, "TENANT="+config.DefaultTenant, "VERSION="+r.opts.Version,
		"VIGIL_EXECUTION_ID="+ex.ID,
	)
	if network {
		env = append(env, "VIGIL_API_URL="+apiURL, "DOCKER_GATEWAY="+gateway)
	} else {
		env = append(env, "VIGIL_API_SOCKET="+sandboxSocket, "VIGIL_API_URL=http://localhost", "DOCKER_GATEWAY=localhost")
	}
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+spec.Env[k])
	}
	return env
}

var envKeyRE = regexp.MustCompile(`[^A-Za-z0-9_]`)

// secrets opens the named Secrets: their keys become environment variables
// and their values are returned for masking.
func (r *Runner) secrets(ctx context.Context, names []string) ([]string, []string, error) {
	var env, vals []string
	for _, name := range names {
		open, err := config.ReadSecret(ctx, r.opts.Store, name)
		if err != nil {
			return nil, nil, err
		}
		keys := make([]string, 0, len(open))
		for k := range open {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			env = append(env, strings.ToUpper(envKeyRE.ReplaceAllString(k, "_"))+"="+open[k].Reveal())
			vals = append(vals, open[k].Reveal())
		}
	}
	return env, vals, nil
}

// hidden lists the paths a run must not see.
func hidden(dataDir string) []string {
	if dataDir == "" {
		return nil
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil
	}
	if abs == "/tmp" || strings.HasPrefix(abs, "/tmp/") {
		return nil // the run's private /tmp already covers it
	}
	return []string{abs}
}

// capture keeps the first limit bytes of a stream and counts the rest.
type capture struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	limit   int
	dropped int64
}

func newCapture(limit int) *capture { return &capture{limit: limit} }

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := c.limit - c.buf.Len()
	if room >= len(p) {
		c.buf.Write(p)
	} else {
		if room > 0 {
			c.buf.Write(p[:room])
		}
		c.dropped += int64(len(p) - max(room, 0))
	}
	return len(p), nil
}

// result returns what was kept, secrets masked, with a visible marker when
// output was dropped.
func (c *capture) result(secrets []string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := mask(c.buf.String(), secrets)
	if c.dropped > 0 {
		s += fmt.Sprintf("\n[vigil: output truncated: %d more bytes not kept]\n", c.dropped)
		return s, true
	}
	return s, false
}

// live returns the complete lines kept so far, secrets masked, for a run
// still going: a line still being written, and an end that could be the
// start of a secret, wait for the next look.
func (c *capture) live(secrets []string) string {
	c.mu.Lock()
	b := c.buf.Bytes()
	s := string(b[:bytes.LastIndexByte(b, '\n')+1])
	c.mu.Unlock()
	s = mask(s, secrets)
	for _, v := range secrets {
		if len(v) < 3 {
			continue
		}
		for k := min(len(v)-1, len(s)); k > 0; k-- {
			if strings.HasSuffix(s, v[:k]) {
				s = s[:len(s)-k]
				break
			}
		}
	}
	return s
}

// mask replaces each secret value of 3 bytes or more in s.
func mask(s string, secrets []string) string {
	for _, v := range secrets {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, "<secret>")
		}
	}
	return s
}

var _ io.Writer = (*capture)(nil)

// liveOutputInterval is how often a running execution's record gets the
// output written since the last look, for `vigil executions logs -f`. A
// run that ends sooner is written once, at its end.
const liveOutputInterval = 250 * time.Millisecond

// liveOutput writes the complete lines of a running execution's output to
// its record every liveOutputInterval while they grow; the returned stop
// ends it and returns once no write is in progress.
func (r *Runner) liveOutput(ex *Execution, stdout, stderr *capture, secrets []string) (stop func()) {
	snap := *ex
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(liveOutputInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			out, errs := stdout.live(secrets), stderr.live(secrets)
			if len(out) == len(snap.Stdout) && len(errs) == len(snap.Stderr) {
				continue
			}
			snap.Stdout, snap.Stderr = out, errs
			if err := r.save(context.Background(), &snap); err != nil {
				r.log.Warn("record live output", "id", ex.ID, "err", err)
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func sortExecutions(l []*Execution) {
	sort.Slice(l, func(i, j int) bool { return l[i].ID > l[j].ID })
}
