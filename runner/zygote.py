# The warm pool's fork server. vigil starts it inside a sandbox shim (root,
# its own mount and pid namespaces, the data directory hidden, the SDK at
# /run/vigil/sdk, the API socket at /run/vigil/api.sock) as
# `python -u -c <this file>`. It imports what scripts commonly use, then
# forks one process tree per run; it never runs a script itself, so every
# run starts from the same pristine interpreter.
#
# Protocol on fd 0, a SOCK_SEQPACKET unix socket to vigil, one JSON object
# per message:
#
#   vigil → server  {"op": "run", "id": ID, "network": bool, "socket": bool,
#                    "cgroup_procs": [...]}
#                   with four descriptors: spec (the read end of a pipe),
#                   stdout, stderr and status (write ends).
#                   {"op": "signal", "id": ID, "sig": N}
#   server → vigil  {"op": "ready", "python": "3.11.2"}
#                   {"op": "forked", "id": ID}
#                   {"op": "error", "id": ID, "error": "..."}
#                   {"op": "exited", "id": ID, "status": <wait status>}
#
# A run is prepared before it is needed ("parked") in a slot: a pid namespace
# whose init serves run after run. The server makes a slot when it has no
# idle one: it calls unshare(CLONE_NEWPID) and forks, so the child ("init")
# is pid 1 of a new pid namespace, then returns to its own. For each run,
# init forks the script's process (pid 2, as in a cold run), which unshares
# mount, IPC and UTS namespaces (and network unless "network"), mounts a
# fresh /proc, /tmp, /dev/mqueue and /run/vigil (the SDK, and the API socket
# when "socket"), joins the cgroups in "cgroup_procs" (they hold the default
# limits), sets up its standard streams, rehearses its release on throwaway
# data (see rehearse) and waits.
# When the run comes, vigil writes the script's own limits if they differ,
# and writes
# {"spec": SandboxSpec, "script": base64} into the spec pipe. The script's
# process writes the script to /run/vigil/controlscript.py, makes /run
# read-only, sets its rlimits, drops to the sandbox user with no_new_privs,
# reports "started" on the status pipe, closes every other descriptor and
# runs the script as __main__. Init forwards signals and reaps; when the
# script's process has exited it kills every process left in the namespace,
# reports as the sandbox shim does (status lines on the status pipe), tells
# the server, which sends "exited" with the status a cold run's shim would
# have exited with, and waits for its next run. Init never runs a script
# and reads nothing of one, so no run can leave anything in it for the
# next; a SIGKILL for a run kills its slot. Idle slots are closed after
# VIGIL_SLOT_IDLE_SECONDS (60 by default).
#
# The server never reads a run's spec: the run's own process does. So no run's
# environment or secrets ever sit in the server's memory, which every later
# run inherits.
import base64
import ctypes
import errno
import json
import os
import resource
import selectors
import signal
import socket
import sys
import time
import types

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_DUMPABLE = 4
SHIM_EXIT = 125
TMP_SIZE = 64 << 20  # the sandbox shim's DefaultTmpSize
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2)
SCRIPT = "/run/vigil/controlscript.py"
SOCKET = "/run/vigil/api.sock"
SDK = "/run/vigil/sdk"

libc = ctypes.CDLL(None, use_errno=True)
# fork(2) without the interpreter's after-fork work: ~200 page faults (the
# copies of the pages its handlers touch) and 0.5-1 ms of CPU per fork
# here. PyDLL keeps the GIL held across the call, so the child holds it too.
_fork = ctypes.PyDLL(None, use_errno=True).fork
_fork.restype = ctypes.c_int
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                       ctypes.c_ulong, ctypes.c_char_p)


def fork():
    """Forks as os.fork does, for the server's and its slots' forks: they
    are single-threaded and hold no lock of the interpreter's or of a
    module's, so what CPython's after-fork work does in the child (its
    locks made anew, other threads' states dropped, threading's, logging's
    and random's at-fork handlers) has nothing to do but give random's
    generator a new seed, which the child does here. glibc's at-fork
    handlers (OpenSSL's) run as with os.fork."""
    pid = _fork()
    if pid < 0:
        e = ctypes.get_errno()
        raise OSError(e, "fork: %s" % os.strerror(e))
    if pid == 0:
        rnd = sys.modules.get("random")
        if rnd is not None:
            # What random's handler, Random.seed(), does, less its checks
            # on an argument it is not given (a third of the faults).
            sys.modules["_random"].Random.seed(rnd._inst)
            rnd._inst.gauss_next = None
    return pid


def check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


def mount(src, target, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None
    check(libc.mount(enc(src), enc(target), enc(fstype), flags, enc(data)),
          "mount %s on %s" % (fstype or src or "remount", target))


def unshare(flags):
    check(libc.unshare(flags), "unshare")


def prctl(op, arg):
    check(libc.prctl(op, ctypes.c_ulong(arg), 0, 0, 0), "prctl %d" % op)


def send(ctl, **msg):
    try:
        ctl.send(json.dumps(msg).encode())
    except OSError:
        pass


# ---- the server -----------------------------------------------------------

def preload():
    # What scripts commonly import; the SDK may be missing (tests).
    import json, urllib.request, urllib.parse, http.client, ssl, base64  # noqa
    import hashlib, hmac, datetime, re, subprocess, threading, uuid, logging  # noqa
    import traceback, argparse, random, tempfile, shlex, pathlib, linecache  # noqa
    try:
        import vigil  # noqa: F401
    except ImportError:
        pass
    exercise()
    import gc
    gc.collect()
    gc.freeze()  # keep the heap's pages shared with the children


def exercise():
    """Takes once, here, the first-use costs that every run would pay after
    the fork (the compiler's and the JSON codec's first calls cost ~2 ms):
    what a run's script process and a script's start do, on throwaway data.
    Returns the decoded spec document."""
    import io
    import importlib.machinery
    doc = {"spec": {"argv": ["python3", "-u", SCRIPT, "{}"], "env": ["A=b"], "uid": 1,
                    "rlimits": [{"resource": 7, "cur": 1, "max": 1}]},
           "script": base64.b64encode(b"print(1)\n").decode()}
    back = json.loads(json.dumps(doc).encode())
    base64.b64decode(back["script"])
    src = b"import json, sys\nx = json.dumps({'a': [1, 2.5, None]})\ny = json.loads(x)\nprint(x, file=OUT)\n"
    main = types.ModuleType("__main__")
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", SCRIPT)
    main.OUT = io.StringIO()
    exec(compile(src, SCRIPT, "exec", dont_inherit=True), main.__dict__)
    time.time_ns()
    return back


def lower_priority():
    """What the server and its prepared runs do is never on a run's way to
    its first instruction: at a lower priority it yields the CPU to the runs
    under way, whose scripts get vigil's own priority back. Only where a
    process may raise its priority again (root, outside a user namespace);
    returns the priority to give back, or None."""
    base = os.getpriority(os.PRIO_PROCESS, 0)
    low = min(base + 10, 19)
    pid = os.fork()
    if pid == 0:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, low)
            os.setpriority(os.PRIO_PROCESS, 0, base)
        except OSError:
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return None
    os.setpriority(os.PRIO_PROCESS, 0, low)
    return base


IDLE_SLOTS = 16  # idle slots kept; more are closed as their runs end
# An idle slot is closed after this long unused, so that a burst of runs
# leaves no processes behind once it is over.
SLOT_IDLE = float(os.environ.get("VIGIL_SLOT_IDLE_SECONDS") or 60)


class Slot:
    """A pid namespace whose init serves runs: pid is init's, sock the
    server's end of their socket, run the id of the run it holds."""

    def __init__(self, pid, sock):
        self.pid, self.sock, self.run, self.since = pid, sock, None, 0.0


def serve():
    """Serves run requests; returns only in a run's script process, with
    what run_main needs."""
    ctl = socket.socket(fileno=os.dup(0))
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.close(null)
    own_pid_ns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    slots = {}  # init's pid → Slot
    idle = []
    global PRIORITY
    PRIORITY = lower_priority()
    preload()
    send(ctl, op="ready", python=sys.version.split()[0])
    sel = selectors.DefaultSelector()
    sel.register(ctl, selectors.EVENT_READ)
    sel.register(wake_r, selectors.EVENT_READ)
    closing = False

    def drop(slot):
        """Closes a slot's socket: its init exits once it is idle."""
        if slot in idle:
            idle.remove(slot)
        try:
            sel.unregister(slot.sock)
        except (KeyError, ValueError):
            pass
        slot.sock.close()

    def new_slot(req, fds):
        """Makes a slot for the run req. Returns (slot, None) in the server
        and (None, argv) in the run's script process."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = -1
        try:
            check(libc.unshare(CLONE_NEWPID), "unshare pid namespace")
            pid = fork()
        except OSError:
            ours.close()
            theirs.close()
            raise
        if pid == 0:
            signal.set_wakeup_fd(-1)
            ctl.close()
            sel.close()
            ours.close()
            for other in slots.values():
                other.sock.close()
            for fd in (wake_r, wake_w, own_pid_ns):
                os.close(fd)
            return None, init(theirs, req, fds)
        theirs.close()
        # Back to our own pid namespace for the next slot's unshare.
        if libc.setns(own_pid_ns, CLONE_NEWPID) != 0:
            os._exit(SHIM_EXIT)  # cannot serve another run safely
        slot = Slot(pid, ours)
        slots[pid] = slot
        sel.register(ours, selectors.EVENT_READ, slot)
        return slot, None

    while True:
        while slots:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = slots.pop(pid, None)
            if slot is None:
                continue
            if slot.run is not None:
                send(ctl, op="exited", id=slot.run, status=status)
            drop(slot)
        if closing and not slots:
            os._exit(0)
        timeout = None
        if idle:  # the oldest idle slot is first
            timeout = max(0.0, idle[0].since + SLOT_IDLE - time.monotonic())
        ready = sel.select(timeout)
        now = time.monotonic()
        while idle and idle[0].since + SLOT_IDLE <= now:
            drop(idle[0])
        for key, _ in ready:
            if key.fileobj is wake_r:
                try:
                    os.read(wake_r, 512)
                except BlockingIOError:
                    pass
                continue
            if key.data is not None:  # a slot's init
                slot = key.data
                try:
                    msg = json.loads(slot.sock.recv(4096) or b"null")
                except (OSError, ValueError):
                    msg = None
                if not isinstance(msg, dict) or msg.get("op") != "done":
                    drop(slot)  # init is gone: the reaper reports its run
                    continue
                code = int(msg.get("code", SHIM_EXIT)) & 0xFF
                send(ctl, op="exited", id=slot.run, status=code << 8)
                slot.run = None
                if closing or len(idle) >= IDLE_SLOTS:
                    drop(slot)
                else:
                    slot.since = time.monotonic()
                    idle.append(slot)
                continue
            try:
                data, fds, _, _ = socket.recv_fds(ctl, 65536, 8)
            except OSError:
                data, fds = b"", []
            if not data:
                sel.unregister(ctl)
                closing = True  # vigil is gone: finish the runs, then exit
                for slot in list(idle):
                    drop(slot)
                continue
            try:
                req = json.loads(data)
                op = req.get("op")
            except ValueError:
                req, op = {}, None
            if op == "signal":
                for slot in slots.values():
                    if slot.run is not None and slot.run == req.get("id"):
                        try:
                            os.kill(slot.pid, int(req.get("sig", signal.SIGKILL)))
                        except (OSError, ValueError):
                            pass
                continue
            if op != "run" or len(fds) != 4:
                for fd in fds:
                    os.close(fd)
                send(ctl, op="error", id=req.get("id", ""), error="bad request")
                continue
            slot = None
            while idle and slot is None:
                slot = idle.pop()
                try:
                    socket.send_fds(slot.sock, [data], fds)
                except OSError:
                    drop(slot)  # its init died while idle
                    slot = None
            if slot is None:
                try:
                    slot, argv = new_slot(req, fds)
                except OSError as e:
                    for fd in fds:
                        os.close(fd)
                    send(ctl, op="error", id=req.get("id", ""), error=str(e))
                    continue
                if slot is None:
                    return argv
            for fd in fds:
                os.close(fd)
            slot.run = req.get("id", "")
            send(ctl, op="forked", id=req["id"])


# ---- a slot's init (pid 1 of its pid namespace) ----------------------------

def init(sock, req, fds):
    """Serves runs in this pid namespace, the first being req with its
    descriptors fds: forks each run's script process and supervises it.
    Returns only in a script's process, with what run_main needs."""
    current = 0  # the script process of the run under way

    def forward(sig, _frame):
        if current:
            try:
                os.kill(current, sig)
            except OSError:
                pass
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # Its own process group, as a cold run's shim: kill(0) in the script
    # reaches its own run, not the server's other runs.
    os.setpgid(0, 0)
    for sig in FORWARDED:
        signal.signal(sig, forward)
    while True:
        status = fds[3]
        try:
            first_pid()
            # A forwarded signal waits, in init or in the new process,
            # until the script's process has set its own dispositions
            # (prepare).
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            pid = fork()
        except BaseException as e:  # noqa: B902 — nothing may reach the server's loop
            report(status, sandbox_error=str(e) or type(e).__name__)
            os._exit(SHIM_EXIT)
        if pid == 0:
            sock.close()
            return script_process(req, fds)
        current = pid
        signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
        for fd in fds[:3]:
            os.close(fd)
        try:
            code, line = supervise(pid)
        except BaseException:  # noqa: B902
            import traceback
            traceback.print_exc()  # to vigil's log
            os._exit(SHIM_EXIT)
        current = 0
        report(status, **line)
        os.close(status)
        try:
            sock.send(json.dumps({"op": "done", "code": code}).encode())
            data, fds, _, _ = socket.recv_fds(sock, 65536, 8)
            req = json.loads(data) if data else None
        except (OSError, ValueError):
            req = None
        if not isinstance(req, dict) or len(fds) != 4:
            os._exit(0)  # the server closed the slot


def first_pid():
    """Makes the next fork take pid 2, as a cold run's script has: every
    process of the last run is gone. Best effort: it needs CAP_SYS_ADMIN."""
    try:
        fd = os.open("/proc/sys/kernel/ns_last_pid", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, b"1")
    except OSError:
        pass
    finally:
        os.close(fd)


def script_process(req, fds):
    """The run's script process: builds the run's sandbox, joins its
    cgroups and waits for the spec. Returns what run_main needs."""
    spec_fd, status = fds[0], fds[3]
    try:
        # A fork leaves the main thread's native_id its parent's (CPython
        # 3.11), where a cold start has its own.
        threading = sys.modules.get("threading")
        if threading is not None and hasattr(threading.main_thread(), "_set_native_id"):
            threading.main_thread()._set_native_id()
        network = bool(req.get("network"))
        flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS
        if not network:
            flags |= CLONE_NEWNET
        unshare(flags)
        build_mounts(network, bool(req.get("socket")))
        if not network:
            loopback_up()
        # Joining a cgroup can wait for an RCU grace period: done now,
        # off the run's critical path.
        for procs in req.get("cgroup_procs") or []:
            fd = os.open(procs, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, b"0")
            finally:
                os.close(fd)
        prepare(fds)
        rehearse()
        # The run's spec comes when vigil has set the cgroup's limits.
        doc = read_json(spec_fd)
        install(base64.b64decode(doc["script"]))
        return enter(doc["spec"], status)
    except BaseException as e:  # noqa: B902
        report(status, sandbox_error=str(e) or type(e).__name__)
        os._exit(SHIM_EXIT)


def rehearse():
    """Takes now, while the run waits for its spec, the first-touch costs of
    what releasing it will do (copy-on-write faults on the interpreter's
    pages, most of a millisecond here): exercise again, whose pages are this
    process's to copy now, and the steps only this process takes, each on
    throwaway data and harmless now."""
    doc = exercise()
    script = base64.b64decode(doc["script"])
    path = "/tmp/.vigil-rehearsal"
    with open(path, "xb") as f:
        os.fchmod(f.fileno(), 0o644)
        f.write(script)
    os.unlink(path)
    for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_CORE, resource.RLIMIT_CPU):
        resource.setrlimit(r, resource.getrlimit(r))
    if os.geteuid() == 0:
        os.setgroups([])  # enter drops them too
    os.environ.clear()  # enter sets the run's own
    os.environ.update(spec_env(doc["spec"]))
    os.environ.clear()
    json.dumps({"started": time.time_ns()}).encode()


def install(script):
    """Writes the script where a cold run has it, read-only, and makes /run
    read-only: the last of the mounts, shared with init."""
    with open(SCRIPT, "xb") as dst:
        os.fchmod(dst.fileno(), 0o644)
        dst.write(script)
    mount(SCRIPT, SCRIPT, None, MS_BIND)
    mount(None, SCRIPT, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    mount(None, "/run", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)


def read_json(fd):
    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return json.loads(b"".join(chunks))


def umount(target):
    check(libc.umount2(target.encode(), 2), "unmount %s" % target)  # MNT_DETACH


def build_mounts(network, with_socket):
    """Replaces the server's /proc, /tmp and /run with the run's own, so the
    mount table reads as a cold run's. /run stays writable for the script,
    which comes with the spec."""
    ro = MS_NOSUID | MS_NODEV | MS_NOEXEC
    umount("/proc")
    mount("proc", "/proc", "proc", ro)
    umount("/tmp")
    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
          "size=%d,mode=1777" % TMP_SIZE)
    for p in ("/var/tmp", "/dev/shm"):
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o040000 and st.st_mode & 0o002:
            umount(p)
            mount("/tmp", p, None, MS_BIND)
    if os.path.isdir("/dev/mqueue"):
        umount("/dev/mqueue")
        mount("mqueue", "/dev/mqueue", "mqueue", ro)
    # What the run's /run keeps from the server's is moved out of the way
    # (a directory the script cannot reach), then into the new /run.
    keep = [(SDK, True)]
    if with_socket:
        keep.append((SOCKET, False))
    real = os.path.realpath("/etc/resolv.conf")
    if network and real.startswith("/run/") and os.path.exists(real):
        keep.append((real, False))
    stash = "/tmp/.vigil-stash"
    os.mkdir(stash, 0o700)
    moved = []
    for i, (path, is_dir) in enumerate(keep):
        tmp = "%s/%d" % (stash, i)
        if is_dir:
            os.mkdir(tmp)
        else:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444))
        mount(path, tmp, None, MS_BIND | (MS_REC if is_dir else 0))
        moved.append((tmp, path, is_dir))
    umount("/run")
    mount("tmpfs", "/run", "tmpfs", ro, "size=1m,nr_inodes=4096,mode=0755")
    os.makedirs("/run/vigil", 0o755)
    for tmp, path, is_dir in moved:
        os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
        if is_dir:
            os.mkdir(path, 0o755)
        else:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o444))
        mount(tmp, path, None, MS_MOVE)
        if is_dir:
            os.rmdir(tmp)
        else:
            os.unlink(tmp)
    os.rmdir(stash)


def loopback_up():
    import fcntl
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ifr = struct.pack("16sH14s", b"lo", 0, b"")
        flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, ifr))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))  # SIOCSIFFLAGS, IFF_UP
    finally:
        s.close()


def report(fd, **line):
    try:
        os.write(fd, json.dumps(line).encode() + b"\n")
    except OSError:
        pass


def supervise(pid):
    """Waits for the script's process, reaping what else ends meanwhile,
    then kills what is left of the run. Returns the code a cold run's
    shim exits with and the status line that reports the run."""
    while True:
        try:
            wpid, ws, ru = os.wait4(-1, 0)
        except ChildProcessError:
            return SHIM_EXIT, {"exit": SHIM_EXIT}
        if wpid == pid and (os.WIFEXITED(ws) or os.WIFSIGNALED(ws)):
            break
    code = os.WEXITSTATUS(ws) if os.WIFEXITED(ws) else 128 + os.WTERMSIG(ws)
    cpu = int((ru.ru_utime + ru.ru_stime) * 1e9)
    return code, {"exit": code, "orphans": kill_rest(), "cpu_ns": cpu, "maxrss_kb": ru.ru_maxrss}


def kill_rest():
    """Kills every process left in the namespace and reaps it; returns how
    many there were, those that had already ended not counted."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            return 0
    killed = 0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.wait()
        except ChildProcessError:
            return killed
        killed += 1


# ---- the script's process --------------------------------------------------

def prepare(fds):
    """What the script's process can set before its run is known: its
    standard streams, working directory and signal dispositions."""
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(fds[1], 1)
    os.dup2(fds[2], 2)
    os.chdir("/tmp")
    for sig in FORWARDED + (signal.SIGCHLD,):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)  # blocked by init


def enter(spec, status):
    """Puts this process under the run's limits and identity; returns what
    run_main needs. Every step must succeed before the script's first
    instruction."""
    if PRIORITY is not None:
        os.setpriority(os.PRIO_PROCESS, 0, PRIORITY)
    for r in spec.get("rlimits") or []:
        lim = [v if v < 1 << 63 else resource.RLIM_INFINITY for v in (r["cur"], r["max"])]
        resource.setrlimit(r["resource"], tuple(lim))
    uid, gid = spec.get("uid", -1), spec.get("gid", -1)
    if uid >= 0 or gid >= 0:
        os.setgroups([])
        if gid >= 0:
            os.setresgid(gid, gid, gid)
        if uid >= 0:
            os.setresuid(uid, uid, uid)
        # Changing ids made the process undumpable, which an exec by the
        # new user would undo: its /proc/self files stay its own.
        prctl(PR_SET_DUMPABLE, 1)
    if spec.get("no_new_privs"):
        prctl(PR_SET_NO_NEW_PRIVS, 1)
    if spec.get("dir", "/tmp") != "/tmp":
        os.chdir(spec["dir"])
    env = spec_env(spec)
    os.environ.clear()
    os.environ.update(env)
    argv = spec["argv"]
    report(status, started=time.time_ns())
    os.closerange(3, 1 << 20)
    return argv


def spec_env(spec):
    """The script's environment, from the spec's NAME=value list."""
    return dict(e.split("=", 1) for e in spec.get("env") or [] if "=" in e)


def run_main(argv):
    """Runs the script as `python -u SCRIPT ARGS...` would: a fresh
    __main__, sys.argv, sys.path[0], tracebacks without this file's frames,
    the same exit codes; then exits as the interpreter would, but without
    tearing down the modules the server preloaded (see finish)."""
    import builtins
    import importlib.machinery
    path = argv[2]
    sys.argv = argv[2:]
    sys.orig_argv = list(argv)
    sys.path[0] = os.path.dirname(path)
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", path)
    main.__builtins__ = builtins
    main.__annotations__ = {}
    sys.modules["__main__"] = main
    try:
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec", dont_inherit=True)
    except SyntaxError as e:
        sys.excepthook(type(e), e, None)
        finish(1, main)
    try:
        exec(code, main.__dict__)
    except SystemExit as e:
        finish(exit_code(e), main)
    except BaseException as e:  # noqa: B902 — reported as the interpreter would
        e.__traceback__ = e.__traceback__.tb_next  # this frame
        sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__
        sys.excepthook(type(e), e, e.__traceback__)
        finish(1, main, isinstance(e, KeyboardInterrupt))
    finish(0, main)


def exit_code(e):
    """The exit status for SystemExit e, as the interpreter computes it."""
    code = e.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if -(1 << 63) <= code < 1 << 63 else 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:  # noqa: B902
        pass
    return 1


def finish(code, main, interrupted=False):
    """Ends the run as Py_FinalizeEx would in the order that a script can
    see — non-daemon threads joined, atexit handlers, the script's own
    objects released (their __del__ runs), stdio flushed — and then exits
    at once: tearing down every preloaded module would cost ~13 ms of CPU
    per run. Died of SIGINT after an uncaught KeyboardInterrupt, as the
    interpreter does."""
    import atexit
    import gc
    import threading
    try:
        threading._shutdown()
    except BaseException:  # noqa: B902
        pass
    atexit._run_exitfuncs()
    flush()
    sys.modules["__main__"] = None
    main.__dict__.clear()
    gc.collect()
    flush()
    if interrupted:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def flush():
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:  # noqa: B902
            pass


run_main(serve())
