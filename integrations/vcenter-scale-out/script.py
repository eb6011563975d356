#!/usr/bin/env python3
"""vcenter-scale-out: on SERVER_AUTOSCALE_OUT, clone servers for a pool from a
vCenter template and add them to the pool.

Run by vigil as `python3 script.py '<alert json>'`. For each
SERVER_AUTOSCALE_OUT event of the alert:

  1. clone num_scaleout_servers VMs from VCENTER_TEMPLATE, named
     <pool>-<8 hex digits of the request id>-<n>; a VM of that name that
     already exists is reused, so the same request delivered twice clones
     once;
  2. power them on and wait for VMware Tools to report an IPv4 address;
  3. add them to the pool (ip, SERVER_PORT, hostname = the VM's name);
  4. publish SERVER_AUTOSCALE_OUT_COMPLETE.

When a step fails (a clone task fails, CLONE_TIMEOUT or IP_TIMEOUT passes,
the pool cannot be written), every VM of the request that is not in the pool
is powered off and destroyed, SERVER_AUTOSCALE_OUT_FAILED is published with
the reason, and the script exits 1. See README.md for the parameters.
"""

import hashlib
import ipaddress
import os
import re
import ssl
import sys
import time
from urllib.parse import urlparse

import vigil

EVENT = "SERVER_AUTOSCALE_OUT"
INFO = "server_autoscaleout_info"
MAX_VM_NAME = 80


class Failure(Exception):
    """A scale-out that cannot go on; the message is the reason published."""


class TimedOut(Failure):
    """A vCenter task that did not end in time."""


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


def port(name, default):
    value = param(name, default)
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise Failure("%s must be a port from 1 to 65535, got %r" % (name, value))
    return int(value)


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
        self.template = param("VCENTER_TEMPLATE")
        if not self.template:
            raise Failure("VCENTER_TEMPLATE is not set")
        self.folder = param("VCENTER_FOLDER")
        self.resource_pool = param("VCENTER_RESOURCE_POOL")
        self.network = param("VCENTER_NETWORK")
        self.customization = param("VCENTER_CUSTOMIZATION_SPEC")
        self.server_port = port("SERVER_PORT", "80")
        self.clone_timeout = seconds("CLONE_TIMEOUT", "600")
        self.ip_timeout = seconds("IP_TIMEOUT", "600")
        self.poll = max(0.01, seconds("POLL_INTERVAL", "2"))


# -- the request --------------------------------------------------------------

class Request:
    """One SERVER_AUTOSCALE_OUT event: the pool, how many servers, the id."""

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
        try:
            self.count = int(info.get("num_scaleout_servers"))
        except (TypeError, ValueError):
            self.count = 0
            self.error = "event_details.%s.num_scaleout_servers is %r, not a number" % (
                INFO, info.get("num_scaleout_servers"))
        tag = hashlib.sha256(self.request_id.encode()).hexdigest()[:8]
        self.names = ["%s-%s-%d" % (self.pool, tag, i + 1) for i in range(max(0, self.count))]
        if self.names and len(self.names[-1]) > MAX_VM_NAME:
            self.error = "VM name %s is longer than vCenter's %d characters" % (self.names[-1], MAX_VM_NAME)

    def complete(self, servers):
        return {"server_autoscaleout_complete_info": {
            "nscaleout": len(servers),
            "scaled_out_servers": [{"ip": {"addr": s["ip"], "type": "V4"}, "port": s["port"],
                                    "hostname": s["hostname"]} for s in servers],
            "pool_ref": self.pool_ref, "pool": self.pool, "reason": self.reason,
            "request_id": self.request_id,
        }}

    def failed(self, reason):
        return {"server_autoscale_failed_info": {
            "pool_ref": self.pool_ref, "pool": self.pool, "num_servers": self.count,
            "reason": reason, "request_id": self.request_id,
        }}


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
    """A pyVmomi session and the few calls the script makes. It reads
    properties one path at a time through the property collector rather
    than whole data objects, which also keeps pyVmomi 6.7 away from fields
    newer than its API version."""

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
        """The values of paths on obj; an unset property is None."""
        pc = self.vmodl.query.PropertyCollector
        spec = pc.FilterSpec(objectSet=[pc.ObjectSpec(obj=obj)],
                             propSet=[pc.PropertySpec(type=type(obj), pathSet=list(paths))])
        out = dict.fromkeys(paths)
        for oc in self.content.propertyCollector.RetrieveContents([spec]) or []:
            for p in oc.propSet or []:
                out[p.name] = p.val
        return out

    def names_under(self, root, kind):
        """{name: object} of every object of kind below root."""
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
        """The object at path ("a/b/c") below parent, one FindChild a step."""
        obj = parent
        for step in [s for s in path.split("/") if s]:
            obj = self.content.searchIndex.FindChild(obj, step)
            if obj is None:
                raise Failure("vCenter has no %s %r (no %r in the path)" % (what, path, step))
        return obj

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

    def task_state(self, task):
        p = self.props(task, "info.state", "info.error", "info.result")
        return p["info.state"], p["info.error"], p["info.result"]

    def wait(self, task, timeout, what):
        """Wait for task; return its result or raise Failure."""
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

    def power_state(self, vm):
        return self.props(vm, "runtime.powerState")["runtime.powerState"]

    def ipv4(self, vm, network):
        """The VM's first IPv4 address (on network, when given), or None. A
        link-local address (169.254.x.x, what a guest without a DHCP lease
        gives itself) does not count."""
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

    def destroy(self, vm, name, timeout):
        if self.power_state(vm) != "poweredOff":
            self.wait(vm.PowerOffVM_Task(), timeout, "power off %s" % name)
        self.wait(vm.Destroy_Task(), timeout, "destroy %s" % name)


# -- scale-out ----------------------------------------------------------------

def placement(vc, cfg, dc):
    """The template, the folder and the resource pool of the clones."""
    p = vc.props(dc, "vmFolder", "hostFolder")
    if "/" in cfg.template:
        template = vc.child(p["vmFolder"], cfg.template, "template")
    else:
        found = vc.names_under(p["vmFolder"], vc.vim.VirtualMachine).get(cfg.template) or []
        if len(found) != 1:
            raise Failure("vCenter has %s VM or template named %r" % ("no" if not found else "more than one",
                                                                      cfg.template))
        template = found[0]
    t = vc.props(template, "parent", "resourcePool", "runtime.host")
    folder = vc.child(p["vmFolder"], cfg.folder, "folder") if cfg.folder else t["parent"]
    if cfg.resource_pool:
        pool = vc.child(p["hostFolder"], cfg.resource_pool, "resource pool")
        if isinstance(pool, vc.vim.ComputeResource):
            pool = vc.props(pool, "resourcePool")["resourcePool"]
    elif t["resourcePool"] is not None:
        pool = t["resourcePool"]
    else:
        # A template has no resource pool: use its host's cluster's (or
        # standalone host's) root pool.
        compute = vc.props(t["runtime.host"], "parent")["parent"]
        pool = vc.props(compute, "resourcePool")["resourcePool"]
    if not isinstance(pool, vc.vim.ResourcePool):
        raise Failure("VCENTER_RESOURCE_POOL %r is not a resource pool or cluster" % cfg.resource_pool)
    return template, folder, pool


def clone_spec(vc, cfg, pool):
    spec = vc.vim.vm.CloneSpec(location=vc.vim.vm.RelocateSpec(pool=pool), powerOn=True, template=False)
    if cfg.customization:
        try:
            item = vc.content.customizationSpecManager.GetCustomizationSpec(name=cfg.customization)
        except vc.vim.fault.NotFound:
            raise Failure("vCenter has no customization specification %r" % cfg.customization)
        spec.customization = item.spec
    return spec


def scale_out(api, vc, cfg, req):
    """Make req's servers and add them to the pool; return them."""
    dc = vc.datacenter(cfg.datacenter)
    template, folder, pool = placement(vc, cfg, dc)
    vigil.progress("placement", template=cfg.template, pool=req.pool, request=req.request_id)

    existing = vc.vms(dc)
    vms, tasks = {}, {}
    spec = None
    for name in req.names:
        found = existing.get(name) or []
        if len(found) > 1:
            raise Failure("vCenter has %d VMs named %s" % (len(found), name))
        if found:
            vms[name] = found[0]
            vigil.progress("reuse", vm=name)
            continue
        spec = spec or clone_spec(vc, cfg, pool)
        tasks[name] = template.Clone(folder=folder, name=name, spec=spec)
        vigil.progress("clone started", vm=name)

    deadline = time.monotonic() + cfg.clone_timeout
    errors = []
    for name, task in tasks.items():
        try:
            vms[name] = vc.wait(task, max(0.0, deadline - time.monotonic()), "clone %s" % name)
            vigil.progress("cloned", vm=name)
        except TimedOut as e:
            errors.append(str(e))
            cancel(vc, task)
        except Failure as e:
            errors.append(str(e))
    if errors:
        raise Failure("; ".join(errors))

    for name in req.names:
        if vc.power_state(vms[name]) != "poweredOn":
            vc.wait(vms[name].PowerOnVM_Task(), cfg.clone_timeout, "power on %s" % name)
            vigil.progress("powered on", vm=name)

    servers = []
    deadline = time.monotonic() + cfg.ip_timeout
    waiting = list(req.names)
    while waiting:
        for name in list(waiting):
            ip = vc.ipv4(vms[name], cfg.network)
            if ip:
                waiting.remove(name)
                servers.append({"ip": ip, "port": cfg.server_port, "hostname": name})
                vigil.progress("address", vm=name, ip=ip)
        if not waiting:
            break
        if time.monotonic() >= deadline:
            raise Failure("no IPv4 address%s from VMware Tools within %gs for %s" % (
                " on network %s" % cfg.network if cfg.network else "", cfg.ip_timeout, ", ".join(waiting)))
        time.sleep(cfg.poll)
    servers.sort(key=lambda s: req.names.index(s["hostname"]))

    try:
        api.add_pool_servers(req.pool, servers)
    except vigil.VigilError as e:
        raise Failure("add servers to pool %s: %s" % (req.pool, e))
    vigil.progress("pool updated", pool=req.pool, servers=",".join("%s=%s" % (s["hostname"], s["ip"]) for s in servers))
    return servers


def cancel(vc, task):
    """Ask vCenter to cancel a clone that ran out of time and give it a
    moment to end, so that cleanup sees the VM it may have made."""
    try:
        task.CancelTask()
    except Exception:
        pass
    for _ in range(50):
        state, _, _ = vc.task_state(task)
        if state in ("success", "error"):
            return
        time.sleep(min(vc.poll, 0.2))


def cleanup(api, vc, cfg, req):
    """Power off and destroy the request's VMs that are not in the pool."""
    try:
        in_pool = {s.get("hostname") for s in api.get("Pool", req.pool)["spec"].get("servers") or []}
    except vigil.NotFoundError:
        in_pool = set()
    except vigil.VigilError as e:
        return ["read pool %s to know which VMs to keep: %s; VMs %s left for a retry" % (
            req.pool, e, ", ".join(req.names))]
    problems = []
    try:
        existing = vc.vms(vc.datacenter(cfg.datacenter))
    except Exception as e:
        return ["list VMs: %s" % fault_text(e)]
    for name in req.names:
        if name in in_pool:
            continue
        for vm in existing.get(name) or []:
            try:
                vc.destroy(vm, name, cfg.clone_timeout)
                vigil.progress("destroyed", vm=name)
            except Exception as e:
                problems.append("clean up %s: %s" % (name, e if isinstance(e, Failure) else fault_text(e)))
    return problems


class Session:
    """The settings and the vCenter connection, made on first use."""

    def __init__(self):
        self.cfg = self.vc = None

    def open(self):
        if self.vc is None:
            self.cfg = Settings()
            self.vc = VCenter(self.cfg)
        return self.cfg, self.vc

    def close(self):
        if self.vc is not None:
            self.vc.close()


def handle(api, session, req):
    """Carry out one request; return the servers added, or raise."""
    if req.error:
        raise Failure(req.error)
    if req.count <= 0:
        vigil.progress("nothing to do", pool=req.pool, servers=req.count)
        return []
    try:
        api.get("Pool", req.pool)
    except vigil.NotFoundError:
        raise Failure("pool %s does not exist" % req.pool)
    cfg, vc = session.open()
    try:
        return scale_out(api, vc, cfg, req)
    except Exception as e:
        reason = str(e) if isinstance(e, Failure) else fault_text(e)
        raise Failure("; ".join([reason] + cleanup(api, vc, cfg, req)))


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
            vigil.progress("scale-out", pool=req.pool, servers=req.count, request=req.request_id)
            try:
                servers = handle(api, session, req)
            except Exception as e:
                failed += 1
                reason = str(e) if isinstance(e, Failure) else fault_text(e)
                vigil.progress("scale-out failed", pool=req.pool, reason=reason)
                api.publish(EVENT + "_FAILED", "pool", req.pool, req.failed(reason),
                            id=req.request_id + "-failed", **fields)
                continue
            ans = api.publish(EVENT + "_COMPLETE", "pool", req.pool, req.complete(servers),
                              id=req.request_id + "-complete", **fields)
            vigil.progress("scale-out complete", pool=req.pool, servers=len(servers),
                           event=ans.get("id"), duplicate=ans.get("duplicate"))
    finally:
        session.close()
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
