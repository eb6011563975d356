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
import time

import vigil
from vigil import vsphere
from vigil.params import Failure, param, port, seconds

MAX_VM_NAME = 80


# -- parameters ---------------------------------------------------------------

class Settings:
    def __init__(self):
        self.login = vsphere.login_from_env("VCENTER_URL", "VCENTER_USER", "VCENTER_PASSWORD", "VCENTER_CA",
                                            "VCENTER_INSECURE")
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

class Request(vsphere.AutoscaleRequest):
    """One SERVER_AUTOSCALE_OUT event: the pool, how many servers, the id,
    and the names of the VMs."""

    EVENT = "SERVER_AUTOSCALE_OUT"
    INFO = "server_autoscaleout_info"
    LABEL = "scale-out"
    COMPLETE = ("server_autoscaleout_complete_info", "nscaleout", "scaled_out_servers")

    def __init__(self, alert, ev):
        super().__init__(alert, ev)
        try:
            self.count = int(self.info.get("num_scaleout_servers"))
        except (TypeError, ValueError):
            self.count = 0
            self.error = "event_details.%s.num_scaleout_servers is %r, not a number" % (
                self.INFO, self.info.get("num_scaleout_servers"))
        tag = hashlib.sha256(self.request_id.encode()).hexdigest()[:8]
        self.names = ["%s-%s-%d" % (self.pool, tag, i + 1) for i in range(max(0, self.count))]
        if self.names and len(self.names[-1]) > MAX_VM_NAME:
            self.error = "VM name %s is longer than vCenter's %d characters" % (self.names[-1], MAX_VM_NAME)


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
            vms[name] = vc.wait_task(task, max(0.0, deadline - time.monotonic()), "clone %s" % name)
            vigil.progress("cloned", vm=name)
        except vsphere.TimedOut as e:
            errors.append(str(e))
            vc.cancel_task(task)  # so that cleanup sees the VM it may have made
        except Failure as e:
            errors.append(str(e))
    if errors:
        raise Failure("; ".join(errors))

    for name in req.names:
        if vc.power_on(vms[name], cfg.clone_timeout, name):
            vigil.progress("powered on", vm=name)

    servers = []
    deadline = time.monotonic() + cfg.ip_timeout
    waiting = list(req.names)
    while waiting:
        for name in list(waiting):
            ip = vc.guest_ipv4(vms[name], cfg.network)
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
        return ["list VMs: %s" % vsphere.fault_text(e)]
    for name in req.names:
        if name in in_pool:
            continue
        for vm in existing.get(name) or []:
            try:
                vc.destroy(vm, cfg.clone_timeout, name)
                vigil.progress("destroyed", vm=name)
            except Exception as e:
                problems.append("clean up %s: %s" % (name, vsphere.failure_text(e)))
    return problems


def handle(api, conn, req):
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
    cfg, vc = conn.settings(), conn.session()
    try:
        return scale_out(api, vc, cfg, req)
    except Exception as e:
        raise Failure("; ".join([vsphere.failure_text(e)] + cleanup(api, vc, cfg, req)))


def main():
    vsphere.run(Request, handle, Settings)


if __name__ == "__main__":
    main()
