//go:build linux

package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func init() {
	sandboxSysProcAttr = linuxSysProcAttr
	shimRun = runShim
}

// sandboxHostname is the UTS name inside every sandbox.
const sandboxHostname = "vigil-sandbox"

// shimSignals are forwarded by the shim to the script.
var shimSignals = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// linuxSysProcAttr creates the namespaces at clone time, so the shim never
// has to unshare from its multi-threaded Go runtime.
func linuxSysProcAttr(spec SandboxSpec) *syscall.SysProcAttr {
	flags := uintptr(unix.CLONE_NEWPID | unix.CLONE_NEWNS | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS)
	if !spec.Network {
		flags |= unix.CLONE_NEWNET
	}
	return &syscall.SysProcAttr{Cloneflags: flags, Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// runShim is ShimMain on Linux; it returns the exit code.
func runShim() int {
	// PR_SET_NO_NEW_PRIVS is per thread and a ptrace tracer is one
	// thread: keep setup, the fork and the ptrace calls on this one.
	runtime.LockOSThread()
	// From here on SIGTERM and friends no longer kill the shim: during
	// setup they abort it, later they are forwarded to the script.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, shimSignals...)

	if err := closeInherited(); err != nil {
		fmt.Fprintf(os.Stderr, "vigil: sandbox: %v\n", err)
		return ShimExitCode
	}
	status, err := openStatus()
	if err != nil {
		fmt.Fprintf(os.Stderr, "vigil: sandbox: %v\n", err)
		return ShimExitCode
	}
	spec, err := readSpec()
	if err != nil {
		return shimFail(status, err)
	}
	pid, err := startSandboxed(spec, status, sigs)
	var stop stopped
	if errors.As(err, &stop) {
		// Not a sandbox failure: vigil stopped the run before it began.
		return 128 + int(stop.sig)
	}
	if err != nil {
		return shimFail(status, err)
	}
	return supervise(pid, status, sigs)
}

// closeInherited marks every descriptor above fd 4 close-on-exec: vigil
// may have inherited some without the flag (Go does not close them), and
// they must not reach the script. Go's own descriptors have it already.
func closeInherited() error {
	err := unix.CloseRange(statusFD+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Before Linux 5.11.
	ents, rerr := os.ReadDir("/proc/self/fd")
	if rerr != nil {
		return fmt.Errorf("close inherited descriptors: %w (close_range: %w)", rerr, err)
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > statusFD {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// openStatus checks that fd 4 is the status pipe and keeps it from the
// script.
func openStatus() (*os.File, error) {
	if err := checkPipe(statusFD); err != nil {
		return nil, err
	}
	unix.CloseOnExec(statusFD)
	return os.NewFile(statusFD, "vigil-sandbox-status"), nil
}

func checkPipe(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fd %d: %w (run by vigil only)", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("fd %d is not a pipe (run by vigil only)", fd)
	}
	return nil
}

// shimFail reports err as the run's sandbox error and returns ShimExitCode.
func shimFail(status *os.File, err error) int {
	b, _ := json.Marshal(statusLine{SandboxError: err.Error()})
	if _, werr := status.Write(append(b, '\n')); werr != nil {
		fmt.Fprintf(os.Stderr, "vigil: sandbox: %v\n", err)
	}
	return ShimExitCode
}

// readSpec reads the spec from fd 3 and validates it again.
func readSpec() (SandboxSpec, error) {
	var spec SandboxSpec
	if err := checkPipe(specFD); err != nil {
		return spec, err
	}
	f := os.NewFile(specFD, "vigil-sandbox-spec")
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSpecSize+1))
	if err != nil {
		return spec, fmt.Errorf("read spec: %w", err)
	}
	if len(b) > maxSpecSize {
		return spec, fmt.Errorf("read spec: more than %d bytes", maxSpecSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		return spec, fmt.Errorf("read spec: %w", err)
	}
	return spec.withDefaults()
}

// startSandboxed builds the sandbox around the shim and starts the script,
// stopped before its first instruction until its limits are set. It returns
// the script's pid.
func startSandboxed(spec SandboxSpec, status *os.File, sigs <-chan os.Signal) (int, error) {
	// The shim itself joins none of the run's cgroups: the script is
	// moved into them while it is stopped after exec (release). In them,
	// the shim's Go runtime would compete with the script for pids.max
	// and the memory limit, and a fork bomb would make it fail to create
	// a thread and crash.
	m := &mounter{}
	defer m.closeSources()
	if err := m.build(spec); err != nil {
		return 0, err
	}
	if err := unix.Sethostname([]byte(sandboxHostname)); err != nil {
		return 0, fmt.Errorf("set hostname: %w", err)
	}
	if !spec.Network {
		if err := loopbackUp(); err != nil {
			return 0, err
		}
	}
	if spec.NoNewPrivs {
		// This thread forks the script, which inherits the flag.
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return 0, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	path, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return 0, err
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   spec.Env,
		Files: []uintptr{0, 1, 2},
		// Ptrace stops the script right after execve, before its first
		// instruction, so its limits are set on it alone: set on the shim,
		// RLIMIT_AS and RLIMIT_NPROC could starve the shim's own runtime.
		Sys: &syscall.SysProcAttr{Ptrace: true, Credential: credential(spec)},
	}
	// The last checks before the script exists: vigil still there (the
	// parent-death signal covers it from here on), no stop requested.
	if err := parentAlive(); err != nil {
		return 0, err
	}
	runtime.Gosched() // let os/signal deliver what has arrived
	select {
	case s := <-sigs:
		return 0, stopped{s.(syscall.Signal)}
	default:
	}
	pid, err := syscall.ForkExec(path, spec.Argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s in %s: %w", spec.Argv[0], spec.Dir, err)
	}
	if err := release(pid, spec.CgroupProcs, spec.Rlimits, attr.Sys.Credential, status); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, err
	}
	return pid, nil
}

// stopped is a signal that ended the setup.
type stopped struct{ sig syscall.Signal }

func (s stopped) Error() string { return fmt.Sprintf("stopped by %v during setup", s.sig) }

// release waits for the script's post-exec ptrace stop, moves it into its
// cgroups, sets its rlimits, reports the start and lets it run.
func release(pid int, cgroupProcs []string, rlimits []Rlimit, cred *syscall.Credential, status *os.File) error {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, unix.WALL, nil)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("wait for the script to stop: %w", err)
		}
	}
	if !ws.Stopped() || ws.StopSignal() != unix.SIGTRAP {
		return fmt.Errorf("the script did not stop after exec (wait status %#x)", uint32(ws))
	}
	for _, p := range cgroupProcs {
		if err := joinCgroup(p, pid); err != nil {
			return err
		}
	}
	if err := setRlimits(pid, rlimits, cred); err != nil {
		return err
	}
	started := time.Now().UnixNano()
	b, _ := json.Marshal(statusLine{Started: &started})
	if _, err := status.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("report start: %w", err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("release the script: %w", err)
	}
	return nil
}

// setRlimits sets the stopped script's limits. Without CAP_SYS_RESOURCE
// (which root lacks in some containers) the kernel lets a process set
// another's limits only if its real uid and gid are the target's; so this
// thread, and only this one, takes the script's ids as its real ids for
// the calls, keeping root as its effective id, and then takes its own back.
func setRlimits(pid int, rlimits []Rlimit, cred *syscall.Credential) (err error) {
	if len(rlimits) == 0 {
		return nil
	}
	if cred != nil {
		rgid, ruid := os.Getgid(), os.Getuid()
		if err := setThreadRealID(unix.SYS_SETRESGID, int(cred.Gid)); err != nil {
			return fmt.Errorf("set rlimits: take gid %d: %w", cred.Gid, err)
		}
		defer func() {
			if rerr := setThreadRealID(unix.SYS_SETRESGID, rgid); rerr != nil && err == nil {
				err = fmt.Errorf("set rlimits: restore gid %d: %w", rgid, rerr)
			}
		}()
		if err := setThreadRealID(unix.SYS_SETRESUID, int(cred.Uid)); err != nil {
			return fmt.Errorf("set rlimits: take uid %d: %w", cred.Uid, err)
		}
		defer func() {
			if rerr := setThreadRealID(unix.SYS_SETRESUID, ruid); rerr != nil && err == nil {
				err = fmt.Errorf("set rlimits: restore uid %d: %w", ruid, rerr)
			}
		}()
	}
	for _, r := range rlimits {
		if err := unix.Prlimit(pid, r.Resource, &unix.Rlimit{Cur: r.Cur, Max: r.Max}, nil); err != nil {
			return fmt.Errorf("set rlimit %d to %d/%d: %w", r.Resource, r.Cur, r.Max, err)
		}
	}
	return nil
}

// setThreadRealID sets the real uid or gid of the calling thread only
// (syscall.Setresuid would change every thread), leaving the effective and
// saved ones.
func setThreadRealID(trap uintptr, id int) error {
	keep := ^uintptr(0) // -1: unchanged
	if _, _, e := unix.RawSyscall(trap, uintptr(id), keep, keep); e != 0 {
		return e
	}
	return nil
}

// supervise is pid 1 of the run: it reaps every process, forwards signals
// to the script and, when the script exits, reports and exits with its
// code, which makes the kernel kill the rest of the run.
func supervise(pid int, status *os.File, sigs <-chan os.Signal) int {
	done := make(chan unix.WaitStatus, 1)
	go func() {
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				// ECHILD: cannot happen while the script lives.
				done <- unix.WaitStatus(0xff << 8)
				return
			}
			if wpid == pid && (ws.Exited() || ws.Signaled()) {
				done <- ws
				return
			}
		}
	}()
	for {
		select {
		case s := <-sigs:
			_ = unix.Kill(pid, s.(syscall.Signal))
		case ws := <-done:
			code := ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			exit := code
			b, _ := json.Marshal(statusLine{Exit: &exit, Orphans: countOrphans()})
			_, _ = status.Write(append(b, '\n'))
			return code
		}
	}
}

// countOrphans reaps what has exited and counts the processes left in the
// pid namespace besides the shim.
func countOrphans() int {
	for {
		var ws unix.WaitStatus
		if wpid, err := unix.Wait4(-1, &ws, unix.WNOHANG|unix.WALL, nil); wpid <= 0 || err != nil {
			break
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if id, err := strconv.Atoi(e.Name()); err == nil && id != 1 {
			n++
		}
	}
	return n
}

// parentAlive fails if vigil has closed its end of the status pipe.
func parentAlive() error {
	fds := []unix.PollFd{{Fd: statusFD}}
	if _, err := unix.Poll(fds, 0); err != nil {
		return fmt.Errorf("poll the status pipe: %w", err)
	}
	if fds[0].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
		return errors.New("vigil is gone")
	}
	return nil
}

// joinCgroup moves process pid (all its threads) into a cgroup.
func joinCgroup(procs string, pid int) error {
	f, err := os.OpenFile(procs, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("join cgroup %s: %w", procs, err)
	}
	_, err = f.WriteString(strconv.Itoa(pid))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("join cgroup %s: %w", procs, err)
	}
	return nil
}

// credential is who the script runs as; nil keeps the shim's user.
func credential(spec SandboxSpec) *syscall.Credential {
	if spec.UID < 0 && spec.GID < 0 {
		return nil
	}
	uid, gid := spec.UID, spec.GID
	if uid < 0 {
		uid = os.Getuid()
	}
	if gid < 0 {
		gid = os.Getgid()
	}
	// Groups empty and NoSetGroups false: setgroups(0), then setgid, then
	// setuid, in the child before exec.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}
}

// lookPath resolves name like a shell would with the script's PATH, inside
// the sandbox.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/bin:/usr/bin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("start %s: %w in PATH %s", name, unix.ENOENT, path)
}

// loopbackUp brings lo up in the new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	defer unix.Close(fd) //nolint:errcheck // an ioctl socket; closing it cannot lose data
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: get flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: set flags: %w", err)
	}
	return nil
}

// mounter builds the sandbox's file system view in the shim's own mount
// namespace.
type mounter struct {
	// scratch are the roots of the file systems the shim mounted; only
	// below them may it create mount points.
	scratch []string
	// readOnly are the shim's tmpfs mounts, made read-only at the end.
	readOnly []string
	sources  []source
}

// source is a bind source, opened before any mount can hide it.
type source struct {
	Bind
	fd     int
	dir    bool
	socket bool
	flags  uintptr // MS_RDONLY / MS_NOEXEC of the source's mount
}

const (
	msTmpfs = unix.MS_NOSUID | unix.MS_NODEV
	msHide  = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
)

// build mounts, in order: / rprivate, a fresh /proc, Hide, /tmp, /run, the
// scratch aliases, the binds; then it makes the shim's tmpfs mounts
// read-only.
func (m *mounter) build(spec SandboxSpec) error {
	binds := make([]Bind, 0, len(spec.ReadOnly)+len(spec.Binds)+2)
	for _, p := range spec.ReadOnly {
		binds = append(binds, Bind{Source: p, Target: p, ReadOnly: true})
	}
	binds = append(binds, spec.Binds...)
	if spec.BindSocket != "" {
		binds = append(binds, Bind{Source: spec.BindSocket, Target: SandboxSocket})
	}
	if spec.Network {
		// Keep DNS working where /etc/resolv.conf points into /run
		// (systemd-resolved), which the sandbox replaces.
		if real, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && under(real, "/run") {
			binds = append(binds, Bind{Source: real, Target: real, ReadOnly: true})
		}
	}
	for _, b := range binds {
		if err := m.open(b, spec.BindSocket != "" && b.Source == spec.BindSocket && b.Target == SandboxSocket); err != nil {
			return err
		}
	}

	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for _, p := range spec.Hide {
		if err := m.hide(p); err != nil {
			return err
		}
	}
	if err := m.tmpfs("/tmp", fmt.Sprintf("size=%d,mode=1777", spec.TmpSize), false); err != nil {
		return err
	}
	if isDir("/run") {
		if err := m.tmpfs("/run", "size=1m,nr_inodes=4096,mode=0755", true); err != nil {
			return err
		}
	}
	// The host's world-writable scratch directories would let a script
	// write outside /tmp: show the sandbox's /tmp there.
	for _, p := range []string{"/var/tmp", "/dev/shm"} {
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&0o002 != 0 {
			if err := mount("/tmp", p, "", unix.MS_BIND, ""); err != nil {
				return err
			}
		}
	}
	// The IPC namespace's own POSIX message queues.
	if isDir("/dev/mqueue") {
		if err := mount("mqueue", "/dev/mqueue", "mqueue", msHide, ""); err != nil {
			return err
		}
	}
	for _, s := range m.sources {
		if err := m.bind(s); err != nil {
			return err
		}
	}
	for _, p := range m.readOnly {
		if err := mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|msHide, ""); err != nil {
			return err
		}
	}
	return nil
}

// open opens a bind's source as an O_PATH descriptor; wantSocket requires
// a unix socket.
func (m *mounter) open(b Bind, wantSocket bool) error {
	fd, err := unix.Open(b.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bind %s: %w", b.Source, err)
	}
	s := source{Bind: b, fd: fd}
	m.sources = append(m.sources, s)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("bind %s: %w", b.Source, err)
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return fmt.Errorf("bind %s: %w", b.Source, err)
	}
	s.dir = st.Mode&unix.S_IFMT == unix.S_IFDIR
	s.socket = st.Mode&unix.S_IFMT == unix.S_IFSOCK
	if sfs.Flags&unix.ST_RDONLY != 0 {
		s.flags |= unix.MS_RDONLY
	}
	if sfs.Flags&unix.ST_NOEXEC != 0 {
		s.flags |= unix.MS_NOEXEC
	}
	if wantSocket && !s.socket {
		return fmt.Errorf("bind_socket %s: not a unix socket", b.Source)
	}
	m.sources[len(m.sources)-1] = s
	return nil
}

func (m *mounter) closeSources() {
	for _, s := range m.sources {
		_ = unix.Close(s.fd)
	}
}

// hide mounts an empty tmpfs over a directory (read-only once the binds
// are in place) and an inaccessible /dev/null over anything else.
func (m *mounter) hide(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return fmt.Errorf("hide %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return m.tmpfs(p, "size=64k,nr_inodes=1024,mode=0755", true)
	}
	if err := mount("/dev/null", p, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("hide %s: %w", p, err)
	}
	return mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|msHide, "")
}

// tmpfs mounts a tmpfs the shim may create mount points in.
func (m *mounter) tmpfs(p, opts string, readOnly bool) error {
	flags := uintptr(msTmpfs)
	if readOnly {
		flags = msHide
	}
	if err := mount("tmpfs", p, "tmpfs", flags, opts); err != nil {
		return err
	}
	m.scratch = append(m.scratch, p)
	if readOnly {
		m.readOnly = append(m.readOnly, p)
	}
	return nil
}

// bind mounts an opened source at its target, nosuid and nodev, read-only
// if asked or if the source is.
func (m *mounter) bind(s source) error {
	if err := m.mountpoint(s.Target, s.dir); err != nil {
		return err
	}
	src := "/proc/self/fd/" + strconv.Itoa(s.fd)
	flags := uintptr(unix.MS_BIND)
	if s.dir {
		flags |= unix.MS_REC
	}
	if err := mount(src, s.Target, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s: %w", s.Source, err)
	}
	flags = unix.MS_REMOUNT | unix.MS_BIND | unix.MS_NOSUID | unix.MS_NODEV | s.flags
	if s.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	if err := mount("", s.Target, "", flags, ""); err != nil {
		return fmt.Errorf("bind %s: %w", s.Source, err)
	}
	return nil
}

// mountpoint makes sure target exists with the right type, creating it
// only inside a file system the shim mounted.
func (m *mounter) mountpoint(target string, dir bool) error {
	var st unix.Stat_t
	err := unix.Stat(target, &st)
	if err == nil {
		if (st.Mode&unix.S_IFMT == unix.S_IFDIR) != dir {
			return fmt.Errorf("bind target %s: a directory and a file do not mount on each other", target)
		}
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("bind target %s: %w", target, err)
	}
	anc := filepath.Dir(target)
	for !exists(anc) {
		anc = filepath.Dir(anc)
	}
	ok := false
	for _, r := range m.scratch {
		ok = ok || under(anc, r)
	}
	if !ok {
		return fmt.Errorf("bind target %s: does not exist, and %s is not a sandbox tmpfs", target, anc)
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("bind target %s: %w", target, err)
	}
	if dir {
		err = os.Mkdir(target, 0o755)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444); err == nil {
			err = f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("bind target %s: %w", target, err)
	}
	return nil
}

func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		what := fstype
		if what == "" {
			what = src
		}
		if flags&unix.MS_REMOUNT != 0 {
			what = "remount"
		}
		if flags&unix.MS_PRIVATE != 0 {
			what = "private"
		}
		return fmt.Errorf("mount %s on %s: %w", what, target, err)
	}
	return nil
}

// under reports whether p is root or inside it.
func under(p, root string) bool {
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")
}

func exists(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil
}

func isDir(p string) bool {
	var st unix.Stat_t
	return unix.Stat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}
