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
	sandboxSocket = "/run/vigil/api.sock"
)

// run executes one attempt and records it; it never returns an error: every
// outcome is a status on the record.
func (r *Runner) run(ctx context.Context, ex *Execution, obj *config.Object, spec ControlScriptSpec) {
	now := r.opts.Now().UTC()
	ex.Status, ex.Started, ex.Runner = StatusRunning, &now, r.opts.ID
	if err := r.save(context.Background(), ex); err != nil {
		r.log.Error("record run start", "id", ex.ID, "err", err)
	}
	res := r.execute(ctx, ex, spec)
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
}

// execute runs the script in its sandbox and fills the record. An error
// means the run could not be set up and is rejected.
func (r *Runner) execute(ctx context.Context, ex *Execution, spec ControlScriptSpec) error {
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
	dir := filepath.Join(r.opts.RunDir, ex.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("run dir: %w", err)
	}
	defer os.RemoveAll(dir)
	scriptPath := filepath.Join(dir, "controlscript.py")
	if err := os.WriteFile(scriptPath, src, 0o644); err != nil {
		return fmt.Errorf("write script: %w", err)
	}

	timeout := spec.Timeout.D()
	token, revoke := "", func() {}
	if r.opts.Tokens != nil {
		if token, revoke, err = r.opts.Tokens.Issue(ctx, ex.ID, timeout+r.opts.TermGrace+time.Minute); err != nil {
			return fmt.Errorf("issue token: %w", err)
		}
	}
	defer revoke()

	lim := spec.Limits
	enforced := map[string]string{}
	var rlimits []Rlimit
	var cg *Cgroup
	if r.cgroups != nil {
		cg, err = r.cgroups.Create(ex.ID, Limits{MemoryBytes: int64(lim.Memory), CPUMillis: lim.CPU.Millis(), Pids: int64(lim.Pids)})
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
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
	network := lim.Network == nil || *lim.Network
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
		TmpSize:    64 << 20,
		Hide:       hidden(r.opts.DataDir),
		Network:    network,
		NoNewPrivs: true,
		Binds:      []Bind{{Source: scriptPath, Target: sandboxScript, ReadOnly: true}, {Source: r.sdkDir, Target: "/run/vigil/sdk", ReadOnly: true}},
	}
	if cg != nil {
		sb.CgroupProcs = cg.ProcsFiles()
	}
	if !network && r.opts.APISocket != "" {
		sb.BindSocket = r.opts.APISocket
	}
	sh, err := r.shims.take(network)
	if err != nil {
		return fmt.Errorf("start sandbox: %w", err)
	}
	send, err := sh.Send(sb)
	if err != nil {
		sh.Discard()
		return err
	}
	cmd := sh.Cmd
	stdout := newCapture(int(lim.Output))
	stderr := newCapture(int(lim.Output))
	var copies sync.WaitGroup
	for _, c := range []struct {
		dst *capture
		src *os.File
	}{{stdout, sh.Stdout}, {stderr, sh.Stderr}} {
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(c.dst, c.src)
			c.src.Close()
		}()
	}
	status := make(chan ShimStatus, 1)
	go func() { status <- send() }()
	waited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		copies.Wait() // the pipes end once every process of the run is gone
		waited <- err
	}()

	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var why error
	var werr error
	select {
	case werr = <-waited:
	case <-deadline.C:
		why = errTimeout
	case <-ctx.Done():
		why = context.Cause(ctx)
	}
	if why != nil {
		// Ask nicely, then kill the whole tree.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case werr = <-waited:
		case <-time.After(r.opts.TermGrace):
			if cg != nil {
				_ = cg.Kill()
			}
			_ = cmd.Process.Kill()
			werr = <-waited
		}
	}
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
	} else if ps := cmd.ProcessState; ps != nil {
		ex.CPUTimeMS = (ps.UserTime() + ps.SystemTime()).Milliseconds()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			ex.PeakMemory = ru.Maxrss << 10
		}
	}
	ex.KilledDescendants = st.Orphans
	ex.Stdout, ex.StdoutTruncated = stdout.result(secretVals)
	ex.Stderr, ex.StderrTruncated = stderr.result(secretVals)
	classify(ex, werr, why, st)
	return nil
}

var (
	errTimeout = errors.New("timeout")
	errOOM     = errors.New("out of memory")
)

// classify sets the status, exit code and signal from how the run ended.
func classify(ex *Execution, werr, why error, st ShimStatus) {
	var ee *exec.ExitError
	code := 0
	if errors.As(werr, &ee) {
		ws, _ := ee.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			ex.Signal = unix.SignalName(ws.Signal())
		default:
			code = ws.ExitStatus()
		}
	} else if werr != nil {
		ex.Status, ex.Reason = StatusFailed, werr.Error()
		return
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
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
		"PYTHONPATH=/run/vigil/sdk",
		"API_TOKEN=" + token, "VIGIL_API_TOKEN=" + token,
		"USER=" + user, "TENANT=" + config.DefaultTenant, "VERSION=" + r.opts.Version,
		"VIGIL_EXECUTION_ID=" + ex.ID,
	}
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
		obj, err := r.opts.Store.Get(ctx, "Secret", name)
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s: %w", name, err)
		}
		c := r.opts.Store.Cipher()
		if c == nil {
			return nil, nil, fmt.Errorf("secret %s: no secret key", name)
		}
		open, err := config.OpenSecret(c, obj.Spec)
		if err != nil {
			return nil, nil, fmt.Errorf("secret %s: %w", name, err)
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
	s := c.buf.String()
	for _, v := range secrets {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, "<secret>")
		}
	}
	if c.dropped > 0 {
		s += fmt.Sprintf("\n[vigil: output truncated: %d more bytes not kept]\n", c.dropped)
		return s, true
	}
	return s, false
}

var _ io.Writer = (*capture)(nil)

func sortExecutions(l []*Execution) {
	sort.Slice(l, func(i, j int) bool { return l[i].ID > l[j].ID })
}
