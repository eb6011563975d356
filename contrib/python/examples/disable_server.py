#!/usr/bin/env python3
"""On SERVER_DOWN, take the server out of its pool and publish an event.

Run by vigil as `python3 disable_server.py '<alert json>'`; the runner puts
contrib/python on PYTHONPATH and sets VIGIL_API_URL (or VIGIL_API_SOCKET)
and API_TOKEN.
"""
import sys

import vigil

alert = vigil.alert()  # sys.argv[1], parsed
api = vigil.Client()   # address and token from the environment

for ev in alert.events:
    if ev.event_id != "SERVER_DOWN":
        continue
    details = ev.details  # what event_details["se_hm_pool_details"] holds
    pool, addr = details["pool"], details["server"]["ip"]["addr"]

    try:
        current = api.get("Pool", pool)  # read an object
        print("pool %s is at revision %s" % (pool, current["metadata"]["revision"]))

        def disable(obj):  # called again if someone else wrote the pool meanwhile
            for server in obj["spec"]["servers"]:
                if server["ip"] == addr:
                    server["enabled"] = False

        stored = api.update("Pool", pool, disable)  # PUT with metadata.revision; retried on 409
        ans = api.publish("SERVER_DISABLED", "pool", pool, {
            "server": addr, "alert": alert.name, "revision": stored["metadata"]["revision"],
        })
    except vigil.NotFoundError:
        print("no pool %s; nothing to do" % pool)
        continue
    except vigil.VigilError as e:  # one line: "Pool/web: spec.servers: ... (invalid_object, HTTP 400)"
        sys.exit("disable %s in %s: %s" % (addr, pool, e))
    print("disabled %s in pool %s (event seq %s)" % (addr, pool, ans["seq"]))
