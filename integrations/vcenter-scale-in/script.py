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

import re
import time

import vigil
from vigil import vsphere
from vigil.params import Failure, flag, param, seconds


# -- parameters ---------------------------------------------------------------

class Settings:
    def __init__(self):
        self.login = vsphere.login_from_env("VCENTER_URL", "VCENTER_USER", "VCENTER_PASSWORD", "VCENTER_CA",
                                            "VCENTER_INSECURE")
        self.datacenter = param("VCENTER_DATACENTER")
        self.allow_unmanaged = flag("ALLOW_UNMANAGED", "false")
        self.drain = seconds("DRAIN_SECONDS", "30")
        self.task_timeout = seconds("TASK_TIMEOUT", "600")
        self.poll = max(0.01, seconds("POLL_INTERVAL", "2"))


# -- the request --------------------------------------------------------------

def addr_of(ip):
    return ip.get("addr") if isinstance(ip, dict) else ip


class Request(vsphere.AutoscaleRequest):
    """One SERVER_AUTOSCALE_IN event: the pool, how many, which, the id."""

    EVENT = "SERVER_AUTOSCALE_IN"
    INFO = "server_autoscalein_info"
    LABEL = "scale-in"
    COMPLETE = ("server_autoscalein_complete_info", "nscalein", "scaled_in_servers")

    def __init__(self, alert, ev):
        super().__init__(alert, ev)
        raw = self.info.get("num_scalein_servers")
        try:
            self.count = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            self.count, self.error = 0, "event_details.%s.num_scalein_servers is %r, not a number" % (self.INFO, raw)
        self.candidates = []
        for c in self.info.get("scalein_server_candidates") or []:
            if isinstance(c, dict) and (c.get("hostname") or addr_of(c.get("ip"))):
                self.candidates.append({"ip": addr_of(c.get("ip")), "port": c.get("port"),
                                        "hostname": c.get("hostname")})
        if self.count is None:
            self.count = len(self.candidates)
        self.count = max(0, self.count)
        self.managed = re.compile(r"%s-[0-9a-f]{8}-[0-9]+" % re.escape(self.pool))


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


# -- scale-in -----------------------------------------------------------------

def handle(api, conn, req):
    """Carry out one request; return the servers taken out, or raise."""
    if req.error:
        raise Failure(req.error)
    cfg = conn.settings()
    try:
        servers = api.get("Pool", req.pool)["spec"].get("servers") or []
    except vigil.NotFoundError:
        raise Failure("pool %s does not exist" % req.pool)
    chosen = choose(req, servers, cfg)
    if not chosen:
        vigil.progress("nothing to do", pool=req.pool, servers=req.count)
        return []
    names = ", ".join(s.get("hostname") or s.get("ip") for s in chosen)
    vc = conn.session()  # before touching the pool: a vCenter that cannot be reached changes nothing

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
                if vc.power_off(vm, cfg.task_timeout, name):
                    vigil.progress("powered off", vm=name)
                vc.destroy(vm, cfg.task_timeout, name)
                vigil.progress("destroyed", vm=name)
            except Exception as e:
                why = str(e) if isinstance(e, Failure) else "destroy %s: %s" % (name, vsphere.fault_text(e))
                problems.append(why)
    if problems:
        raise Failure("; ".join(problems))
    return chosen


def main():
    vsphere.run(Request, handle, Settings)


if __name__ == "__main__":
    main()
