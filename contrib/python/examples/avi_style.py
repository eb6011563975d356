#!/usr/bin/env python3
"""The same change written as an Avi ControlScript: no SDK, only sys.argv[1],
API_TOKEN and urllib. DOCKER_GATEWAY names the API host, as in Avi; vigil
also sets VIGIL_API_URL, which wins here.
"""
import json
import os
import sys
import urllib.error
import urllib.request

alert = json.loads(sys.argv[1])
base = os.environ.get("VIGIL_API_URL") or "http://%s:8480" % (os.environ.get("DOCKER_GATEWAY") or "localhost")
headers = {"Authorization": "Bearer " + os.environ["API_TOKEN"], "Content-Type": "application/json"}


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/api/v1" + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


for ev in alert["events"]:
    if ev["event_id"] != "SERVER_DOWN":
        continue
    d = ev["event_details"]["se_hm_pool_details"]
    pool, addr = d["pool"], d["server"]["ip"]["addr"]
    for attempt in range(5):
        obj = call("GET", "/objects/pool/" + pool)  # metadata.revision comes with it
        for server in obj["spec"]["servers"]:
            if server["ip"] == addr:
                server["enabled"] = False
        try:
            obj = call("PUT", "/objects/pool/" + pool, obj)  # only if still at that revision
            break
        except urllib.error.HTTPError as e:
            if e.code != 409:  # 409 conflict: someone else wrote it; read it again
                sys.exit("PUT pool %s: %s" % (pool, json.load(e)["error"]["message"]))
    else:
        sys.exit("pool %s: still conflicting after 5 attempts" % pool)
    call("POST", "/events", {"event_id": "SERVER_DISABLED", "obj_type": "pool", "obj_name": pool,
                             "event_details": {"server": addr, "alert": alert["name"]}})
    print("disabled %s in pool %s" % (addr, pool))
