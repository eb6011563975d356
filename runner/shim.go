package runner

// The sandbox shim. vigil runs every ControlScript through a copy of itself:
// Command re-executes the vigil binary with the hidden first argument
// ShimArg in new namespaces, and that process (ShimMain) builds the sandbox,
// starts the script as its child and stays as pid 1 of the run's pid
// namespace until the script exits. The limits are applied before the
// script's first instruction; a step that fails rejects the run (fail
// closed).
//
// The protocol between vigil (the parent) and the shim uses two inherited
// pipes, never argv or the environment:
//
//	fd 3  parent → shim  the SandboxSpec as one JSON document, then EOF.
//	fd 4  shim → parent  status, one JSON object per line:
//	        {"sandbox_error": "..."}            the sandbox could not be built;
//	                                            the script never ran; the shim
//	                                            exits with ShimExitCode (125).
//	        {"started": <unix nanoseconds>}     the script is about to run its
//	                                            first instruction.
//	        {"exit": <code>, "orphans": <n>}    the script exited; n other
//	                                            processes of the run were still
//	                                            alive and die with the shim.
//
// fd 4 is close-on-exec in the shim, so the script never holds it; it reads
// EOF when the shim is gone. A shim that finds fd 4 closed (vigil died)
// before it starts the script gives up; a SIGTERM or SIGINT that arrives
// during setup ends the shim with 128+n and no status line.
//
// The shim's steps, in order (shim_linux.go): mark inherited descriptors
// close-on-exec; read the spec; mount (/ rprivate, /proc, Hide, /tmp,
// /run, /var/tmp and /dev/shm, binds, read-only remounts); set the host
// name; bring lo up (new network namespace only); set no_new_privs; fork
// and exec the script with setgroups, setgid and setuid and under
// PTRACE_TRACEME, so it stops right after execve; move it into its cgroups;
// set its rlimits with prlimit; report "started"; detach. The shim itself
// keeps root and none of the limits, and stays out of the run's cgroups, so
// the script cannot signal or trace it and RLIMIT_AS, RLIMIT_NPROC,
// pids.max or the memory limit cannot starve its Go runtime (a fork bomb
// at pids.max would make it fail to create a thread and crash).

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ShimArg is the hidden first argument that makes the vigil binary run
// ShimMain instead of its commands.
const ShimArg = "__vigil_sandbox"

// ShimExitCode is the exit code of a shim that could not build the sandbox
// or start the script. Because a script may exit with 125 too, tell the two
// apart with ShimStatus.Error, not with the code.
const ShimExitCode = 125

// DefaultTmpSize is the size of the sandbox's private /tmp when
// SandboxSpec.TmpSize is zero.
const DefaultTmpSize = 64 << 20

// SandboxSocket is where SandboxSpec.BindSocket appears inside the sandbox.
const SandboxSocket = "/run/vigil/api.sock"

// The shim's inherited descriptors (exec.Cmd.ExtraFiles start at 3).
const (
	specFD   = 3
	statusFD = 4
)

// Bounds of the protocol.
const (
	maxSpecSize   = 8 << 20
	maxStatusLine = 64 << 10
	rlimitCount   = 16 // RLIM_NLIMITS on Linux
)

// Rlimit is one resource limit applied to the script before its first
// instruction (setrlimit semantics: Cur is the soft limit, Max the hard one).
// Resource is a unix.RLIMIT_* constant, e.g. unix.RLIMIT_AS, RLIMIT_NOFILE,
// RLIMIT_NPROC, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_CORE.
type Rlimit struct {
	Resource int    `json:"resource"`
	Cur      uint64 `json:"cur"`
	Max      uint64 `json:"max"`
}

// Bind makes the host path Source visible inside the sandbox at Target. A
// Target that does not exist is created, but only inside a file system the
// shim itself mounted (/tmp, /run, a Hide directory), never on the host.
// Bind mounts are nosuid and nodev and keep the source's noexec and
// read-only flags.
type Bind struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// SandboxSpec says what the shim builds. It reaches the shim as JSON over an
// inherited pipe (fd 3), never on argv or in the environment, so secrets in
// Env do not show in ps.
//
// The sandbox has its own pid, mount, IPC and UTS namespaces (and network
// namespace unless Network), a fresh /proc, a private /tmp, and a private,
// read-only /run that holds only what BindSocket and Binds put there. The
// host's world-writable scratch directories (/var/tmp, /dev/shm) show the
// sandbox's /tmp instead. The rest of the root file system stays visible;
// with an unprivileged UID, writes outside /tmp fail by permission.
type SandboxSpec struct {
	// Argv is the program and its arguments. Argv[0] is an absolute path,
	// or a name looked up in the PATH of Env (default
	// /usr/local/bin:/usr/bin:/bin) inside the sandbox.
	Argv []string `json:"argv"`
	// Env is the script's whole environment (KEY=value).
	Env []string `json:"env,omitempty"`
	// Dir is the working directory; default /tmp.
	Dir string `json:"dir,omitempty"`
	// UID and GID run the script as this user and group, with no
	// supplementary groups; -1 keeps the current one. Running as root (-1
	// when vigil is root) is for tests: root can undo the mounts.
	UID int `json:"uid"`
	GID int `json:"gid"`
	// Rlimits are set on the script before its first instruction.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// CgroupProcs are cgroup.procs files the shim writes the script's pid
	// into, in order, while the script is stopped after exec and before
	// its first instruction; may be empty. The shim itself stays out of
	// them, so the script's limits cannot starve it.
	CgroupProcs []string `json:"cgroup_procs,omitempty"`
	// TmpSize is the size in bytes of the private tmpfs on /tmp (mode
	// 1777); default DefaultTmpSize.
	TmpSize int64 `json:"tmp_size,omitempty"`
	// Hide lists paths made invisible: an empty read-only tmpfs is mounted
	// over each directory, and an inaccessible node over anything else.
	// Each path must exist.
	Hide []string `json:"hide,omitempty"`
	// ReadOnly lists paths bind-remounted read-only in place (for example
	// the script's own file); the same as a read-only Bind onto itself.
	ReadOnly []string `json:"read_only,omitempty"`
	// Binds are further bind mounts, applied in order after ReadOnly.
	Binds []Bind `json:"binds,omitempty"`
	// Network false gives the script a new network namespace with only
	// loopback (up): no route out.
	Network bool `json:"network,omitempty"`
	// BindSocket, when set, is a host unix socket bind-mounted at
	// SandboxSocket inside (the API for runs without a network).
	BindSocket string `json:"bind_socket,omitempty"`
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS, so no exec can gain privileges.
	NoNewPrivs bool `json:"no_new_privs,omitempty"`
}

// ShimStatus is what the shim reported about one run.
type ShimStatus struct {
	// Started is when the script was released to run its first
	// instruction; nil if it never started.
	Started *time.Time
	// Orphans counts the run's other processes still alive when the
	// script exited; they die with the shim.
	Orphans int
	// CPUTime and MaxRSS (bytes) are the script's own usage, reported by
	// warm runs only.
	CPUTime time.Duration
	MaxRSS  int64
	// Error is set when the sandbox could not be built (the shim's
	// sandbox_error) or the shim was not started or spoke nonsense; the
	// script never ran and the run is rejected. Started == nil with no
	// Error means the shim was killed or stopped by a signal before the
	// script started; cmd.Wait says which.
	Error string
}

// statusLine is one line on fd 4.
type statusLine struct {
	SandboxError string `json:"sandbox_error,omitempty"`
	Started      *int64 `json:"started,omitempty"`
	Exit         *int   `json:"exit,omitempty"`
	Orphans      int    `json:"orphans,omitempty"`
	CPUNanos     int64  `json:"cpu_ns,omitempty"`
	MaxRSSKB     int64  `json:"maxrss_kb,omitempty"`
}

// Hooks that shim_linux.go sets; nil where the sandbox is not supported.
var (
	sandboxSysProcAttr func(SandboxSpec) *syscall.SysProcAttr
	shimRun            func() int
)

// Command returns an *exec.Cmd that runs spec in a sandbox, and send, which
// the caller must call once after cmd.Start, also when Start failed.
//
// The shim is exe (default os.Executable()) with the argument ShimArg, in
// new pid, mount, IPC and UTS namespaces (and network namespace unless
// spec.Network), in its own process group, with the parent-death signal
// SIGKILL: the shim is pid 1 of the run's pid namespace, so when it dies,
// because vigil died or was told to kill it, every process of the run dies
// too. Its environment is empty but for GOMAXPROCS=1. The caller sets
// Stdin, Stdout and Stderr, which the script inherits, and may set
// SysProcAttr.UseCgroupFD and CgroupFD (cgroup v2) before Start. Stop a run
// with cmd.Process.Signal (SIGTERM and SIGINT are forwarded to the script)
// and cmd.Process.Kill (the whole run dies). Signal the shim's pid, not its
// process group, or the script gets each signal twice.
//
// send writes the spec into the shim's fd 3, closes it, and then reads the
// shim's status until the shim exits; call it in its own goroutine next to
// cmd.Wait. It closes the pipes in every case.
func Command(exe string, spec SandboxSpec) (cmd *exec.Cmd, send func() ShimStatus, err error) {
	doc, err := encodeSpec(spec)
	if err != nil {
		return nil, nil, err
	}
	cmd, p, err := newShim(exe, spec.Network)
	if err != nil {
		return nil, nil, err
	}
	p.spec = doc
	return cmd, p.send, nil
}

// encodeSpec validates spec and encodes it for the shim.
func encodeSpec(spec SandboxSpec) ([]byte, error) {
	if sandboxSysProcAttr == nil {
		return nil, fmt.Errorf("sandbox: not supported on %s", runtime.GOOS)
	}
	spec, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("sandbox: encode spec: %w", err)
	}
	if len(doc) > maxSpecSize {
		return nil, fmt.Errorf("sandbox: spec is %d bytes, more than %d", len(doc), maxSpecSize)
	}
	return doc, nil
}

// newShim prepares the shim's command and its protocol pipes; the spec is
// set on the pipes before send.
func newShim(exe string, network bool) (*exec.Cmd, *shimPipes, error) {
	if sandboxSysProcAttr == nil {
		return nil, nil, fmt.Errorf("sandbox: not supported on %s", runtime.GOOS)
	}
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, nil, fmt.Errorf("sandbox: find the vigil binary: %w", err)
		}
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: spec pipe: %w", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		specR.Close()
		specW.Close()
		return nil, nil, fmt.Errorf("sandbox: status pipe: %w", err)
	}
	cmd := exec.Command(exe, ShimArg)
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.ExtraFiles = []*os.File{specR, statusW} // fd 3, fd 4
	cmd.SysProcAttr = sandboxSysProcAttr(SandboxSpec{Network: network})
	return cmd, &shimPipes{cmd: cmd, specR: specR, specW: specW, statusR: statusR, statusW: statusW}, nil
}

// Prestarted is a shim started before its run is known: its namespaces
// exist and its runtime is up, and it waits for a spec. Taking one off a
// pool moves the shim's start-up out of a run's critical path. Its
// stdout and stderr are pipes whose read ends the caller drains once it
// sends a spec.
type Prestarted struct {
	Cmd     *exec.Cmd
	Network bool
	// Stdout and Stderr are the read ends of the script's output.
	Stdout, Stderr *os.File
	pipes          *shimPipes
}

// Prestart starts a shim whose spec must have Network equal to network.
func Prestart(exe string, network bool) (*Prestarted, error) {
	cmd, p, err := newShim(exe, network)
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("sandbox: stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("sandbox: stderr pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		p.send() // closes the protocol pipes
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("sandbox: start shim: %w", err)
	}
	return &Prestarted{Cmd: cmd, Network: network, Stdout: outR, Stderr: errR, pipes: p}, nil
}

// Send gives the shim its spec and returns the function that reports the
// shim's status until it exits (see [Command]).
func (p *Prestarted) Send(spec SandboxSpec) (func() ShimStatus, error) {
	if spec.Network != p.Network {
		return nil, fmt.Errorf("sandbox: a shim started with network %v cannot run a spec with network %v", p.Network, spec.Network)
	}
	doc, err := encodeSpec(spec)
	if err != nil {
		return nil, err
	}
	p.pipes.spec = doc
	return p.pipes.send, nil
}

// Discard kills an unused shim and releases its pipes.
func (p *Prestarted) Discard() {
	_ = p.Cmd.Process.Kill()
	p.pipes.spec = nil
	p.pipes.send()
	_ = p.Cmd.Wait()
	p.Stdout.Close()
	p.Stderr.Close()
}

// shimPipes is the parent's side of one shim's protocol.
type shimPipes struct {
	cmd                            *exec.Cmd
	spec                           []byte
	specR, specW, statusR, statusW *os.File
	once                           sync.Once
	status                         ShimStatus
}

// send writes the spec, then collects the status lines until EOF. Calls
// after the first return the same status.
func (p *shimPipes) send() ShimStatus {
	p.once.Do(func() { p.status = p.exchange() })
	return p.status
}

func (p *shimPipes) exchange() ShimStatus {
	// The shim holds its own copies now; ours would keep the pipes open.
	p.specR.Close()
	p.statusW.Close()
	defer p.statusR.Close()
	if p.cmd.Process == nil {
		p.specW.Close()
		return ShimStatus{Error: "the shim was not started"}
	}
	// A failed write means the shim is gone; cmd.Wait says how.
	_, _ = p.specW.Write(p.spec)
	p.specW.Close()

	return readStatus(p.statusR)
}

// readStatus parses the status lines of a shim or a warm run until EOF.
func readStatus(r io.Reader) ShimStatus {
	var st ShimStatus
	var bad error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxStatusLine)
	for sc.Scan() {
		var l statusLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			bad = fmt.Errorf("bad status line %q: %w", sc.Text(), err)
			continue
		}
		switch {
		case l.SandboxError != "":
			st.Error = l.SandboxError
		case l.Started != nil:
			t := time.Unix(0, *l.Started)
			st.Started = &t
		case l.Exit != nil:
			st.Orphans = l.Orphans
			st.CPUTime = time.Duration(l.CPUNanos)
			st.MaxRSS = l.MaxRSSKB << 10
		}
	}
	if err := sc.Err(); err != nil && bad == nil {
		bad = fmt.Errorf("read the status: %w", err)
	}
	if st.Error == "" && st.Started == nil && bad != nil {
		st.Error = bad.Error()
	}
	return st
}

// ShimMain runs inside the re-executed vigil when os.Args[1] == ShimArg. It
// never returns: it exits with the script's exit code (128+n when the script
// died of signal n), with ShimExitCode when the sandbox could not be built,
// and with 128+n when signal n stopped it before the script started.
func ShimMain() {
	if shimRun == nil {
		fmt.Fprintf(os.Stderr, "vigil: sandbox: not supported on %s\n", runtime.GOOS)
		os.Exit(ShimExitCode)
	}
	os.Exit(shimRun())
}

// withDefaults validates s and returns a copy with defaults applied and
// paths cleaned; s itself is not changed. Errors name the field.
func (s SandboxSpec) withDefaults() (SandboxSpec, error) {
	if err := s.validate(); err != nil {
		return s, fmt.Errorf("sandbox spec: %w", err)
	}
	if s.Dir == "" {
		s.Dir = "/tmp"
	}
	if s.TmpSize == 0 {
		s.TmpSize = DefaultTmpSize
	}
	s.Dir = filepath.Clean(s.Dir)
	s.CgroupProcs = cleanAll(s.CgroupProcs)
	s.Hide = cleanAll(s.Hide)
	s.ReadOnly = cleanAll(s.ReadOnly)
	if s.Binds != nil {
		b := make([]Bind, len(s.Binds))
		for i, x := range s.Binds {
			b[i] = Bind{Source: filepath.Clean(x.Source), Target: filepath.Clean(x.Target), ReadOnly: x.ReadOnly}
		}
		s.Binds = b
	}
	if s.BindSocket != "" {
		s.BindSocket = filepath.Clean(s.BindSocket)
	}
	return s, nil
}

func (s SandboxSpec) validate() error {
	if len(s.Argv) == 0 || s.Argv[0] == "" {
		return errors.New("argv: no program")
	}
	for i, a := range s.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("argv[%d]: contains a NUL byte", i)
		}
	}
	for i, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" || strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("env[%d]: not KEY=value", i)
		}
	}
	if s.Dir != "" {
		if err := checkPath(s.Dir); err != nil {
			return fmt.Errorf("dir: %w", err)
		}
	}
	if s.UID < -1 {
		return fmt.Errorf("uid: %d is not a user id or -1", s.UID)
	}
	if s.GID < -1 {
		return fmt.Errorf("gid: %d is not a group id or -1", s.GID)
	}
	for i, r := range s.Rlimits {
		if r.Resource < 0 || r.Resource >= rlimitCount {
			return fmt.Errorf("rlimits[%d].resource: %d is not a resource", i, r.Resource)
		}
		if r.Cur > r.Max {
			return fmt.Errorf("rlimits[%d]: cur %d is above max %d", i, r.Cur, r.Max)
		}
	}
	if s.TmpSize < 0 {
		return fmt.Errorf("tmp_size: %d is negative", s.TmpSize)
	}
	for i, p := range s.CgroupProcs {
		if err := checkPath(p); err != nil {
			return fmt.Errorf("cgroup_procs[%d]: %w", i, err)
		}
	}
	for i, p := range s.Hide {
		if err := checkMountPath(p); err != nil {
			return fmt.Errorf("hide[%d]: %w", i, err)
		}
	}
	for i, p := range s.ReadOnly {
		if err := checkMountPath(p); err != nil {
			return fmt.Errorf("read_only[%d]: %w", i, err)
		}
	}
	for i, b := range s.Binds {
		if err := checkPath(b.Source); err != nil {
			return fmt.Errorf("binds[%d].source: %w", i, err)
		}
		if err := checkMountPath(b.Target); err != nil {
			return fmt.Errorf("binds[%d].target: %w", i, err)
		}
	}
	if s.BindSocket != "" {
		if err := checkPath(s.BindSocket); err != nil {
			return fmt.Errorf("bind_socket: %w", err)
		}
	}
	return nil
}

// checkPath accepts absolute paths without NUL bytes.
func checkPath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%q is not an absolute path", p)
	}
	if strings.IndexByte(p, 0) >= 0 {
		return fmt.Errorf("%q contains a NUL byte", p)
	}
	return nil
}

// checkMountPath is checkPath that also refuses the root directory.
func checkMountPath(p string) error {
	if err := checkPath(p); err != nil {
		return err
	}
	if filepath.Clean(p) == "/" {
		return errors.New("cannot mount over /")
	}
	return nil
}

func cleanAll(l []string) []string {
	if l == nil {
		return nil
	}
	out := make([]string, len(l))
	for i, p := range l {
		out[i] = filepath.Clean(p)
	}
	return out
}

// nobodyID is the traditional id of nobody and nogroup.
const nobodyID = 65534

// SandboxUser returns the uid of user nobody (from /etc/passwd) and the gid
// of group nogroup (or nobody, from /etc/group), falling back to 65534 for
// an entry that is missing. Scripts run as this user until runners get a
// dedicated one; note that RLIMIT_NPROC counts every process of the uid.
func SandboxUser() (uid, gid int, err error) {
	u := sandboxUser()
	return u.uid, u.gid, u.err
}

// sandboxIDs is what readSandboxUser returned.
type sandboxIDs struct {
	uid, gid int
	err      error
}

// sandboxUser reads the files once: every run needs the ids, which do not
// change while vigil runs.
var sandboxUser = sync.OnceValue(func() sandboxIDs {
	var u sandboxIDs
	u.uid, u.gid, u.err = readSandboxUser()
	return u
})

func readSandboxUser() (uid, gid int, err error) {
	uid, err = lookupID("/etc/passwd", "nobody")
	if err != nil {
		return 0, 0, err
	}
	gid, err = lookupID("/etc/group", "nogroup", "nobody")
	if err != nil {
		return 0, 0, err
	}
	return uid, gid, nil
}

// lookupID returns the id (third field) of the first of names found in the
// colon-separated file, or nobodyID.
func lookupID(file string, names ...string) (int, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nobodyID, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sandbox user: %w", err)
	}
	ids := map[string]string{}
	for line := range bytes.Lines(b) {
		f := strings.Split(strings.TrimSpace(string(line)), ":")
		if len(f) >= 3 {
			if _, dup := ids[f[0]]; !dup {
				ids[f[0]] = f[2]
			}
		}
	}
	for _, n := range names {
		if s, ok := ids[n]; ok {
			id, err := strconv.Atoi(s)
			if err != nil || id < 0 {
				return 0, fmt.Errorf("sandbox user: %s: %s has the bad id %q", file, n, s)
			}
			return id, nil
		}
	}
	return nobodyID, nil
}
