#!/usr/bin/env python3
"""vcenter-scale-in: on SERVER_AUTOSCALE_IN, take servers out of a pool and
destroy their vCenter VMs.

Run by vigil as `python3 script.py '<alert json>'`. For each
SERVER_AUTOSCALE_IN event of the alert:

  1. choose the servers: the event's scalein_server_candidates, else (as
     Avi's sample does) the last num_scalein_servers servers of the pool;
  2. refuse, unless ALLOW_UNMANAGED is true, when a chosen server's hostname
     is not the name of a VM that vcenter-scale-out makes for this pool
     (<pool>-<8 hex digits>-<n>);
  3. drain them (enabled: false), wait DRAIN_SECONDS, remove them from the
     pool;
  4. power off and destroy the VMs named after their hostnames (a VM that is
     already gone is fine);
  5. publish SERVER_AUTOSCALE_IN_COMPLETE.

On a failure, SERVER_AUTOSCALE_IN_FAILED is published with the reason and the
script exits 1. Running the same request again finishes what is left. See
README.md for the parameters.
"""

import os
import re
import ssl
import sys
import time
from urllib.parse import urlparse

import vigil

EVENT = "SERVER_AUTOSCALE_IN"
INFO = "server_autoscalein_info"


class Failure(Exception):
    """A scale-in that cannot go on; the message is the reason published."""


# -- parameters ---------------------------------------------------------------

def param(name, default=""):
    value = os.environ.get(name, "").strip()
    return value if value else default


def flag(name, default):
    value = param(name, default).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise Failure("%s must be true or false, got %r" % (name, value))


def seconds(name, default):
    value = param(name, default)
    m = re.fullmatch(r"(\d+(?:\.\d*)?)(ms|s|m|h)?", value)
    if not m:
        raise Failure("%s must be seconds or a duration such as 90s or 10m, got %r" % (name, value))
    return float(m.group(1)) * {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


class Settings:
    def __init__(self):
        self.url = param("VCENTER_URL")
        self.user = param("VCENTER_USER")
        self.password = os.environ.get("VCENTER_PASSWORD", "")
        self.ca = os.environ.get("VCENTER_CA", "").strip()
        missing = [n for n, v in (("VCENTER_URL", self.url), ("VCENTER_USER", self.user),
                                  ("VCENTER_PASSWORD", self.password)) if not v]
        if missing:
            raise Failure("the vcenter Secret lacks %s (keys vcenter_url, vcenter_user, vcenter_password)"
                          % ", ".join(missing))
        self.insecure = flag("VCENTER_INSECURE", "false")
        self.datacenter = param("VCENTER_DATACENTER")
        self.allow_unmanaged = flag("ALLOW_UNMANAGED", "false")
        self.drain = seconds("DRAIN_SECONDS", "30")
        self.task_timeout = seconds("TASK_TIMEOUT", "600")
        self.poll = max(0.01, seconds("POLL_INTERVAL", "2"))


# -- the request --------------------------------------------------------------

def addr_of(ip):
    return ip.get("addr") if isinstance(ip, dict) else ip


class Request:
    """One SERVER_AUTOSCALE_IN event: the pool, how many, which, the id."""

    def __init__(self, alert, ev):
        info = ev.event_details.get(INFO)
        if not isinstance(info, dict):
            info = {}
        self.pool = info.get("pool") or ev.obj_name or alert.obj_name
        if not self.pool:
            raise Failure("the %s event names no pool (event_details.%s.pool, obj_name)" % (EVENT, INFO))
        self.pool_ref = info.get("pool_ref") or ev.obj_uuid or alert.obj_uuid or ""
        self.reason = info.get("reason") or alert.reason or ""
        self.request_id = str(info.get("request_id") or "%s-%s" % (self.pool, ev.report_timestamp or 0))
        self.error = None
        raw = info.get("num_scalein_servers")
        try:
            self.count = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            self.count, self.error = 0, "event_details.%s.num_scalein_servers is %r, not a number" % (INFO, raw)
        self.candidates = []
        for c in info.get("scalein_server_candidates") or []:
            if isinstance(c, dict) and (c.get("hostname") or addr_of(c.get("ip"))):
                self.candidates.append({"ip": addr_of(c.get("ip")), "port": c.get("port"),
                                        "hostname": c.get("hostname")})
        if self.count is None:
            self.count = len(self.candidates)
        self.count = max(0, self.count)
        self.managed = re.compile(r"%s-[0-9a-f]{8}-[0-9]+" % re.escape(self.pool))

    def complete(self, servers):
        return {"server_autoscalein_complete_info": {
            "nscalein": len(servers),
            "scaled_in_servers": [{"ip": {"addr": s.get("ip"), "type": "V4"}, "port": s.get("port"),
                                   "hostname": s.get("hostname")} for s in servers],
            "pool_ref": self.pool_ref, "pool": self.pool, "reason": self.reason,
            "request_id": self.request_id,
        }}

    def failed(self, reason):
        return {"server_autoscale_failed_info": {
            "pool_ref": self.pool_ref, "pool": self.pool, "num_servers": self.count,
            "reason": reason, "request_id": self.request_id,
        }}


def same(server, want):
    """Whether pool server is the server want names: by hostname when want
    has one, else by ip and (when given) port."""
    if want.get("hostname"):
        return server.get("hostname") == want["hostname"]
    return server.get("ip") == want.get("ip") and (not want.get("port") or server.get("port") == want["port"])


def choose(req, servers, cfg):
    """The servers to take out: req's candidates (as the pool has them, or as
    given when the pool no longer has them), else the last count servers of
    the pool (only those the scale-out made, unless ALLOW_UNMANAGED)."""
    if req.candidates:
        chosen = []
        for c in req.candidates[:req.count]:
            found = [s for s in servers if same(s, c)]
            chosen += found or [c]
    else:
        pick = [s for s in servers if cfg.allow_unmanaged or req.managed.fullmatch(s.get("hostname") or "")]
        chosen = pick[-req.count:] if req.count else []
        if len(chosen) < req.count:
            vigil.progress("fewer servers than asked", asked=req.count, found=len(chosen))
    if not cfg.allow_unmanaged:
        foreign = [s.get("hostname") or s.get("ip") for s in chosen
                   if not req.managed.fullmatch(s.get("hostname") or "")]
        if foreign:
            raise Failure("refusing to remove %s from pool %s: not VMs that vcenter-scale-out made "
                          "(<pool>-<8 hex digits>-<n>); set ALLOW_UNMANAGED=true to allow it"
                          % (", ".join(map(str, foreign)), req.pool))
    return chosen


# -- vCenter ------------------------------------------------------------------

def fault_text(err):
    """One line for a vSphere fault (its type, message and reason) or any
    other exception."""
    name = getattr(err, "_wsdlName", None)
    if not name:
        return "%s: %s" % (type(err).__name__, err) if str(err) else type(err).__name__
    parts = []
    for text in [getattr(err, "msg", None), getattr(err, "reason", None)] + [
            getattr(m, "message", None) for m in (getattr(err, "faultMessage", None) or [])]:
        if text and str(text) not in parts:
            parts.append(str(text))
    return "%s: %s" % (name, "; ".join(parts)) if parts else name


class VCenter:
    """A pyVmomi session; properties are read one path at a time through the
    property collector (see vcenter-scale-out)."""

    def __init__(self, cfg):
        from pyVim.connect import SmartConnect
        from pyVmomi import vim, vmodl
        self.vim, self.vmodl, self.poll = vim, vmodl, cfg.poll
        u = urlparse(cfg.url if "://" in cfg.url else "https://" + cfg.url)
        if u.scheme != "https" or not u.hostname:
            raise Failure("vcenter_url must be an https URL such as https://vcenter.example.com/sdk, got %r"
                          % cfg.url)
        if cfg.insecure:
            ctx = ssl._create_unverified_context()
        else:
            ctx = ssl.create_default_context(cadata=cfg.ca or None)
        self.where = "%s:%d" % (u.hostname, u.port or 443)
        try:
            self.si = SmartConnect(host=u.hostname, port=u.port or 443, path=u.path or "/sdk",
                                   user=cfg.user, pwd=cfg.password, sslContext=ctx)
        except Exception as e:
            raise Failure("connect to vCenter %s: %s" % (self.where, fault_text(e)))
        self.content = self.si.RetrieveContent()

    def close(self):
        try:
            from pyVim.connect import Disconnect
            Disconnect(self.si)
        except Exception:
            pass

    def props(self, obj, *paths):
        pc = self.vmodl.query.PropertyCollector
        spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=obj)],
                             propSet=[pc.PropertySpec(type=type(obj), pathSet=list(paths))])
        out = dict.fromkeys(paths)
        for oc in self.content.propertyCollector.RetrieveContents([spec]) or []:
            for p in oc.propSet or []:
                out[p.name] = p.val
        return out

    def names_under(self, root, kind):
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

    def datacenter(self, name):
        dcs = self.names_under(self.content.rootFolder, self.vim.Datacenter)
        if name:
            found = dcs.get(name) or []
            if len(found) != 1:
                raise Failure("vCenter has %s datacenter named %r" % ("no" if not found else "more than one", name))
            return found[0]
        if len(dcs) != 1 or len(next(iter(dcs.values()))) != 1:
            raise Failure("vCenter has %d datacenters; set VCENTER_DATACENTER" % sum(map(len, dcs.values())))
        return next(iter(dcs.values()))[0]

    def vms(self, dc):
        return self.names_under(self.props(dc, "vmFolder")["vmFolder"], self.vim.VirtualMachine)

    def wait(self, task, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            p = self.props(task, "info.state", "info.error")
            if p["info.state"] == "success":
                return
            if p["info.state"] == "error":
                raise Failure("%s: %s" % (what, fault_text(p["info.error"])))
            if time.monotonic() >= deadline:
                raise Failure("%s: not done after %gs" % (what, timeout))
            time.sleep(self.poll)

    def destroy(self, vm, name, timeout):
        if self.props(vm, "runtime.powerState")["runtime.powerState"] != "poweredOff":
            self.wait(vm.PowerOffVM_Task(), timeout, "power off %s" % name)
            vigil.progress("powered off", vm=name)
        self.wait(vm.Destroy_Task(), timeout, "destroy %s" % name)
        vigil.progress("destroyed", vm=name)


# -- scale-in -----------------------------------------------------------------

class Session:
    """The settings and the vCenter connection, made on first use."""

    def __init__(self):
        self.cfg = self.vc = None

    def settings(self):
        if self.cfg is None:
            self.cfg = Settings()
        return self.cfg

    def vcenter(self):
        if self.vc is None:
            self.vc = VCenter(self.settings())
        return self.vc

    def close(self):
        if self.vc is not None:
            self.vc.close()


def handle(api, session, req):
    """Carry out one request; return the servers taken out, or raise."""
    if req.error:
        raise Failure(req.error)
    cfg = session.settings()
    try:
        servers = api.get("Pool", req.pool)["spec"].get("servers") or []
    except vigil.NotFoundError:
        raise Failure("pool %s does not exist" % req.pool)
    chosen = choose(req, servers, cfg)
    if not chosen:
        vigil.progress("nothing to do", pool=req.pool, servers=req.count)
        return []
    names = ", ".join(s.get("hostname") or s.get("ip") for s in chosen)
    vc = session.vcenter()  # before touching the pool: a vCenter that cannot be reached changes nothing

    in_pool = [s for s in chosen if any(same(p, s) for p in servers)]
    if in_pool:
        try:
            api.set_pool_servers_enabled(req.pool, in_pool, False)
        except vigil.VigilError as e:
            raise Failure("drain %s in pool %s: %s" % (names, req.pool, e))
        vigil.progress("draining", pool=req.pool, servers=names, seconds=cfg.drain)
        time.sleep(cfg.drain)
        try:
            api.remove_pool_servers(req.pool, in_pool)
        except vigil.VigilError as e:
            raise Failure("remove %s from pool %s: %s" % (names, req.pool, e))
        vigil.progress("removed from pool", pool=req.pool, servers=names)

    existing = vc.vms(vc.datacenter(cfg.datacenter))
    problems = []
    for s in chosen:
        name = s.get("hostname")
        found = (existing.get(name) or []) if name else []
        if not found:
            vigil.progress("no VM", vm=name or s.get("ip"))
            continue
        for vm in found:
            try:
                vc.destroy(vm, name, cfg.task_timeout)
            except Exception as e:
                problems.append(str(e) if isinstance(e, Failure) else "destroy %s: %s" % (name, fault_text(e)))
    if problems:
        raise Failure("; ".join(problems))
    return chosen


def main():
    alert = vigil.alert()
    api = vigil.Client()
    events = [ev for ev in alert.events if ev.event_id == EVENT or INFO in ev.event_details]
    if not events:
        sys.exit("the alert holds no %s event; nothing to do" % EVENT)
    session = Session()
    failed = 0
    try:
        for ev in events:
            req = Request(alert, ev)
            fields = {"obj_uuid": req.pool_ref} if req.pool_ref else {}
            vigil.progress("scale-in", pool=req.pool, servers=req.count, request=req.request_id)
            try:
                servers = handle(api, session, req)
            except Exception as e:
                failed += 1
                reason = str(e) if isinstance(e, Failure) else fault_text(e)
                vigil.progress("scale-in failed", pool=req.pool, reason=reason)
                api.publish(EVENT + "_FAILED", "pool", req.pool, req.failed(reason),
                            id=req.request_id + "-failed", **fields)
                continue
            ans = api.publish(EVENT + "_COMPLETE", "pool", req.pool, req.complete(servers),
                              id=req.request_id + "-complete", **fields)
            vigil.progress("scale-in complete", pool=req.pool, servers=len(servers),
                           event=ans.get("id"), duplicate=ans.get("duplicate"))
    finally:
        session.close()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
