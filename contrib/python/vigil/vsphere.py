"""vigil.vsphere: a vCenter session for ControlScripts, and what a script
that answers the autoscale manager's SERVER_AUTOSCALE_OUT or
SERVER_AUTOSCALE_IN with vCenter VMs needs besides its own logic.

`import vigil` does not load this module; a script says
`from vigil import vsphere`. Importing it takes only the standard library
(ssl is loaded when a session is opened). Opening a Session needs pyVmomi
6.7 or later (Debian: python3-pyvmomi); without it, that is a Failure
that says so.

    from vigil import vsphere

    with vsphere.Session("https://vcenter.example.com/sdk", user, password, ca=pem) as vc:
        dc = vc.datacenter("DC0")                    # or None when vCenter has one
        for vm in vc.vms(dc).get("web-1") or []:
            vc.destroy(vm, 600, "web-1")             # powered off first

What the module finds wrong (a bad URL, no such datacenter, a task that
failed or ran out of time) is a vigil.params.Failure, vsphere.Failure here,
with a one-line message. A fault vCenter raises for a call made on its
objects passes through; fault_text() makes it one line.

See contrib/python/README.md.
"""

import os
import sys
import time
from urllib.parse import urlparse

from ._client import Client
from ._errors import AlertError
from ._contract import alert as _alert, progress
from .params import Failure, flag, param

__all__ = [
    "Failure", "TimedOut", "fault_text", "failure_text", "tls_context", "login_from_env", "Session",
    "AutoscaleRequest", "Connection", "run",
]


class TimedOut(Failure):
    """A vCenter task that did not end in time."""


def fault_text(err):
    """One line for a vSphere fault (its type, message and reason) or any
    other exception ("<type>: <message>")."""
    name = getattr(err, "_wsdlName", None)
    if not name:
        return "%s: %s" % (type(err).__name__, err) if str(err) else type(err).__name__
    parts = []
    for text in [getattr(err, "msg", None), getattr(err, "reason", None)] + [
            getattr(m, "message", None) for m in (getattr(err, "faultMessage", None) or [])]:
        if text and str(text) not in parts:
            parts.append(str(text))
    return "%s: %s" % (name, "; ".join(parts)) if parts else name


def failure_text(err):
    """One line for err: a Failure's own message, else fault_text(err)."""
    return str(err) if isinstance(err, Failure) else fault_text(err)


# ---- the session --------------------------------------------------------------------

def _sdk_url(url):
    """url parsed, https:// added when it has no scheme; a Failure unless
    it is an https URL with a host."""
    u = urlparse(url if "://" in url else "https://" + url)
    if u.scheme != "https" or not u.hostname:
        raise Failure("vcenter_url must be an https URL such as https://vcenter.example.com/sdk, got %r" % url)
    return u


def tls_context(ca=None, insecure=False):
    """The TLS context of a session: with insecure, one that verifies
    nothing; else one that verifies the certificate and the host name
    against ca (PEM text of one or more CA certificates) or, without it, the
    system's CAs. A ca that is not PEM raises ssl.SSLError."""
    import ssl
    if insecure:
        return ssl._create_unverified_context()
    return ssl.create_default_context(cadata=ca or None)


def login_from_env(url, user, password, ca, insecure, secret="vcenter"):
    """Session's login arguments (url, user, password, ca, insecure) read
    from the environment variables named url, user, password and ca (the
    keys of the Secret `secret`: VCENTER_URL is key vcenter_url) and the
    boolean parameter insecure (default false). The password is taken as it
    is, the rest stripped. A missing url, user or password is a Failure
    naming them and the Secret's keys."""
    login = {"url": param(url), "user": param(user), "password": os.environ.get(password, ""), "ca": param(ca)}
    missing = [n for n, k in ((url, "url"), (user, "user"), (password, "password")) if not login[k]]
    if missing:
        raise Failure("the %s Secret lacks %s (keys %s)" % (
            secret, ", ".join(missing), ", ".join(n.lower() for n in (url, user, password))))
    login["insecure"] = flag(insecure, "false")
    return login


class Session:
    """A logged-in pyVmomi session, and the few calls a script makes.

    url is the SDK URL (https://vcenter.example.com/sdk; the scheme defaults
    to https, the port to 443, the path to /sdk); any other scheme, or no
    host, is a Failure "vcenter_url must be an https URL ..." (named after
    the vcenter Secret's key). ca and insecure are as in tls_context(); poll
    is the seconds between two looks at a task. Logging in is a Failure
    "connect to vCenter <host>:<port>: <fault>" when it fails. close() logs
    out; a Session is also a context manager.

    Properties are read one path at a time through the property collector
    (props) rather than as whole data objects: pyVmomi 6.7 cannot parse some
    data objects that newer vCenters (and govmomi's simulator) send, with
    fields newer than its API version. vim and vmodl are pyVmomi's; content
    is the ServiceContent; where is "<host>:<port>".
    """

    def __init__(self, url, user, password, ca=None, insecure=False, poll=2.0):
        try:
            from pyVim.connect import SmartConnect
            from pyVmomi import vim, vmodl
        except ImportError as e:
            raise Failure("vigil.vsphere needs pyVmomi 6.7 or later (Debian: python3-pyvmomi): %s" % e) from None
        self.vim, self.vmodl, self.poll = vim, vmodl, poll
        u = _sdk_url(url)
        ctx = tls_context(ca, insecure)
        self.where = "%s:%d" % (u.hostname, u.port or 443)
        try:
            self.si = SmartConnect(host=u.hostname, port=u.port or 443, path=u.path or "/sdk",
                                   user=user, pwd=password, sslContext=ctx)
        except Exception as e:
            raise Failure("connect to vCenter %s: %s" % (self.where, fault_text(e)))
        self.content = self.si.RetrieveContent()

    def close(self):
        """Log out; errors are ignored."""
        try:
            from pyVim.connect import Disconnect
            Disconnect(self.si)
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def props(self, obj, *paths):
        """{path: value} of paths on obj; an unset property is None."""
        pc = self.vmodl.query.PropertyCollector
        spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=obj)],
                             propSet=[pc.PropertySpec(type=type(obj), pathSet=list(paths))])
        out = dict.fromkeys(paths)
        for oc in self.content.propertyCollector.RetrieveContents([spec]) or []:
            for p in oc.propSet or []:
                out[p.name] = p.val
        return out

    def names_under(self, root, kind):
        """{name: [object, ...]} of every object of kind (vim.VirtualMachine)
        below root, by one container view."""
        pc = self.vmodl.query.PropertyCollector
        view = self.content.viewManager.CreateContainerView(root, [kind], True)
        try:
            spec = pc.FilterSpec(
                objectSet=[pc.ObjectSpec(obj=view, skip=True, selectSet=[
                    pc.TraversalSpec(name="view", type=self.vim.view.ContainerView, path="view", skip=False)])],
                propSet=[pc.PropertySpec(type=kind, pathSet=["name"])])
            out = {}
            for oc in self.content.propertyCollector.RetrieveContents([spec]) or []:
                for p in oc.propSet or []:
                    out.setdefault(p.val, []).append(oc.obj)
            return out
        finally:
            view.DestroyView()

    def child(self, parent, path, what):
        """The object at path ("a/b/c") below parent, one FindChild a step;
        a Failure "vCenter has no <what> <path> (no <step> in the path)"."""
        obj = parent
        for step in [s for s in path.split("/") if s]:
            obj = self.content.searchIndex.FindChild(obj, step)
            if obj is None:
                raise Failure("vCenter has no %s %r (no %r in the path)" % (what, path, step))
        return obj

    def datacenter(self, name=None, setting="VCENTER_DATACENTER"):
        """The datacenter named name or, without a name, the only one. No
        such datacenter, or several of that name, is a Failure; so are
        several datacenters and no name, a Failure that says to set the
        parameter setting."""
        dcs = self.names_under(self.content.rootFolder, self.vim.Datacenter)
        if name:
            found = dcs.get(name) or []
            if len(found) != 1:
                raise Failure("vCenter has %s datacenter named %r" % ("no" if not found else "more than one", name))
            return found[0]
        if len(dcs) != 1 or len(next(iter(dcs.values()))) != 1:
            raise Failure("vCenter has %d datacenters; set %s" % (sum(map(len, dcs.values())), setting))
        return next(iter(dcs.values()))[0]

    def vms(self, datacenter):
        """{name: [vm, ...]} of the VMs and templates of the datacenter:
        look a VM up by name with .get(name); more than one in a list is
        several VMs of that name."""
        return self.names_under(self.props(datacenter, "vmFolder")["vmFolder"], self.vim.VirtualMachine)

    def task_state(self, task):
        """(state, error, result) of task's info: state is "queued",
        "running", "success" or "error"."""
        p = self.props(task, "info.state", "info.error", "info.result")
        return p["info.state"], p["info.error"], p["info.result"]

    def wait_task(self, task, timeout, what):
        """Wait up to timeout seconds for task, looking every poll seconds,
        and return its result. A task that fails is a Failure "<what>:
        <fault>", one still running after timeout a TimedOut "<what>: not
        done after <timeout>s"."""
        deadline = time.monotonic() + timeout
        while True:
            state, error, result = self.task_state(task)
            if state == "success":
                return result
            if state == "error":
                raise Failure("%s: %s" % (what, fault_text(error)))
            if time.monotonic() >= deadline:
                raise TimedOut("%s: not done after %gs" % (what, timeout))
            time.sleep(self.poll)

    def cancel_task(self, task):
        """Ask vCenter to cancel task and give it a moment (50 looks, at
        most 0.2s apart) to end, so that what comes next sees what it did."""
        try:
            task.CancelTask()
        except Exception:
            pass
        for _ in range(50):
            state, _, _ = self.task_state(task)
            if state in ("success", "error"):
                return
            time.sleep(min(self.poll, 0.2))

    def power_state(self, vm):
        """"poweredOn", "poweredOff" or "suspended"."""
        return self.props(vm, "runtime.powerState")["runtime.powerState"]

    def power_on(self, vm, timeout, name):
        """Power vm (named name in messages) on unless it is on; return
        whether it was powered on."""
        if self.power_state(vm) == "poweredOn":
            return False
        self.wait_task(vm.PowerOnVM_Task(), timeout, "power on %s" % name)
        return True

    def power_off(self, vm, timeout, name):
        """Power vm off unless it is off; return whether it was powered off."""
        if self.power_state(vm) == "poweredOff":
            return False
        self.wait_task(vm.PowerOffVM_Task(), timeout, "power off %s" % name)
        return True

    def destroy(self, vm, timeout, name):
        """Power vm off (unless it is off) and destroy it, each task within
        timeout seconds."""
        self.power_off(vm, timeout, name)
        self.wait_task(vm.Destroy_Task(), timeout, "destroy %s" % name)

    def guest_ipv4(self, vm, network=None):
        """The first IPv4 address VMware Tools reports for vm (on a NIC on
        network, when given), or None. A link-local address (169.254.x.x,
        what a guest without a DHCP lease gives itself) does not count."""
        import ipaddress
        p = self.props(vm, "guest.net", "guest.ipAddress")
        candidates = []
        for nic in p["guest.net"] or []:
            if network and getattr(nic, "network", None) != network:
                continue
            candidates += list(getattr(nic, "ipAddress", None) or [])
        if not network and p["guest.ipAddress"]:
            candidates.append(p["guest.ipAddress"])
        for addr in candidates:
            try:
                ip = ipaddress.ip_address(addr)
            except ValueError:
                continue
            if ip.version == 4 and not (ip.is_link_local or ip.is_unspecified):
                return str(ip)
        return None


# ---- autoscale requests ----------------------------------------------------------------

class AutoscaleRequest:
    """One request of the autoscale manager (or Avi): an event EVENT of the
    alert, whose event_details hold the request under INFO. A subclass sets
    EVENT, INFO, LABEL (the word of its progress lines, "scale-out") and
    COMPLETE (the key of the _COMPLETE event's details, its count field and
    its servers field), and reads its own fields from self.info.

    Read here: pool (info's, else the event's, then the alert's obj_name; a
    Failure when there is none), pool_ref, reason, request_id (info's, else
    "<pool>-<report_timestamp>"); count is 0 and error (a reason to fail the
    request) None until the subclass sets them.
    """

    EVENT = INFO = LABEL = ""
    COMPLETE = ("", "", "")

    def __init__(self, alert, ev):
        info = ev.event_details.get(self.INFO)
        if not isinstance(info, dict):
            info = {}
        self.info = info
        self.pool = info.get("pool") or ev.obj_name or alert.obj_name
        if not self.pool:
            raise Failure("the %s event names no pool (event_details.%s.pool, obj_name)" % (self.EVENT, self.INFO))
        self.pool_ref = info.get("pool_ref") or ev.obj_uuid or alert.obj_uuid or ""
        self.reason = info.get("reason") or alert.reason or ""
        self.request_id = str(info.get("request_id") or "%s-%s" % (self.pool, ev.report_timestamp or 0))
        self.error = None
        self.count = 0

    def complete(self, servers):
        """The _COMPLETE event's details for servers ({ip, port, hostname})."""
        key, count, field = self.COMPLETE
        return {key: {
            count: len(servers),
            field: [{"ip": {"addr": s.get("ip"), "type": "V4"}, "port": s.get("port"),
                     "hostname": s.get("hostname")} for s in servers],
            "pool_ref": self.pool_ref, "pool": self.pool, "reason": self.reason,
            "request_id": self.request_id,
        }}

    def failed(self, reason):
        """The _FAILED event's details."""
        return {"server_autoscale_failed_info": {
            "pool_ref": self.pool_ref, "pool": self.pool, "num_servers": self.count,
            "reason": reason, "request_id": self.request_id,
        }}


class Connection:
    """The script's settings and its Session, each made on first use and
    kept for the next request; close() logs out. settings is called without
    arguments and returns an object with login (login_from_env()'s dict)
    and poll (Session's poll)."""

    def __init__(self, settings):
        self._settings = settings
        self.cfg = self.vc = None

    def settings(self):
        if self.cfg is None:
            self.cfg = self._settings()
        return self.cfg

    def session(self):
        if self.vc is None:
            cfg = self.settings()
            self.vc = Session(poll=cfg.poll, **cfg.login)
        return self.vc

    def close(self):
        if self.vc is not None:
            self.vc.close()


def run(request, handle, settings):
    """A script's main: for each event of the alert (sys.argv[1]) that is
    request.EVENT or holds request.INFO, make req = request(alert, ev), call
    handle(api, conn, req) and publish <EVENT>_COMPLETE with
    req.complete(servers) for the servers it returns or, when it raises,
    <EVENT>_FAILED with req.failed(<the reason>), on the pool with the ids
    <request_id>-complete and <request_id>-failed. api is a vigil.Client,
    conn one Connection(settings) for all the requests. Each step is a
    progress line. Exits 1 when a request failed; an alert without such an
    event exits with a message saying so."""
    try:
        alert = _alert()
    except AlertError as e:
        sys.exit("bad alert: %s" % e)
    api = Client()
    events = [ev for ev in alert.events if ev.event_id == request.EVENT or request.INFO in ev.event_details]
    if not events:
        sys.exit("the alert holds no %s event; nothing to do" % request.EVENT)
    conn = Connection(settings)
    failed = 0
    try:
        for ev in events:
            try:
                req = request(alert, ev)
            except Failure as e:
                # No pool to report on: say why and go on.
                failed += 1
                print("%s: %s" % (request.EVENT, e), file=sys.stderr, flush=True)
                continue
            fields = {"obj_uuid": req.pool_ref} if req.pool_ref else {}
            progress(request.LABEL, pool=req.pool, servers=req.count, request=req.request_id)
            try:
                servers = handle(api, conn, req)
            except Exception as e:
                failed += 1
                reason = failure_text(e)
                progress(request.LABEL + " failed", pool=req.pool, reason=reason)
                api.publish(request.EVENT + "_FAILED", "pool", req.pool, req.failed(reason),
                            id=req.request_id + "-failed", **fields)
                continue
            ans = api.publish(request.EVENT + "_COMPLETE", "pool", req.pool, req.complete(servers),
                              id=req.request_id + "-complete", **fields)
            progress(request.LABEL + " complete", pool=req.pool, servers=len(servers),
                     event=ans.get("id"), duplicate=ans.get("duplicate"))
    finally:
        conn.close()
    if failed:
        sys.exit(1)
