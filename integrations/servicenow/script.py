#!/usr/bin/env python3
"""Open, update and resolve a ServiceNow incident for a vigil alert.

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. Uses
the Table API with basic auth: SERVICENOW_INSTANCE_URL names the instance,
the Secret keys servicenow_user and servicenow_password (env
SERVICENOW_USER, SERVICENOW_PASSWORD) the account. The incident is found by
its correlation_id, derived from the alert's name without its trailing event
count: a raised alert creates the incident (POST /api/now/table/incident)
or adds a work note to the open one (PATCH), a resolved alert sets it to
Resolved (state 6) with a close code and close notes. A 429 waits for
Retry-After (or X-RateLimit-Reset), a 5xx or a network error is retried
with capped exponential backoff, and every retry looks the incident up
again, so a create is never repeated blindly. See README.md.
"""

import base64
import hashlib
import json
import re
import time
import urllib.parse

import vigil
from vigil import notify

NAME = "servicenow"
# The parameters the retry policy reads: tries after the first, first
# backoff, time budget, timeout of one request.
SETTINGS = ("SERVICENOW_RETRIES", "SERVICENOW_RETRY_BASE", "SERVICENOW_TIME_BUDGET", "SERVICENOW_HTTP_TIMEOUT")

# Field lengths of the task table, which incident extends.
SHORT_MAX = 160
TEXT_MAX = 4000
CORRELATION_MAX = 100
# Incident states: 6 Resolved, 7 Closed, 8 Canceled.
RESOLVED, DONE = "6", ("6", "7", "8")
# urgency and impact by level: 1 high, 2 medium, 3 low.
GRADE = {"ALERT_HIGH": "1", "ALERT_MEDIUM": "2", "ALERT_LOW": "3"}
EVENTS_SHOWN = 20


def correlation_id(key):
    """key as a correlation_id: at most 100 characters of [A-Za-z0-9._:/-],
    so that it stays one term of an encoded query. A key that needs changing
    keeps its head plus '~' and 16 hex digits of its SHA-256."""
    safe = re.sub(r"[^A-Za-z0-9._:/-]", "_", key)
    if safe == key and len(key) <= CORRELATION_MAX:
        return key
    return safe[:CORRELATION_MAX - 17] + "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def describe(view, env):
    a = view.alert
    lines = [view.summary(), "",
             "Alert: %s" % (view.name or "-"),
             "Level: %s" % view.level,
             "Object: %s (%s)" % (notify.text(a.obj_name) or "-", notify.text(a.obj_uuid) or "-"),
             "Reason: %s" % (view.reason or "-")]
    if a.threshold is not None:
        lines.append("Threshold: %s" % notify.text(a.threshold))
    if a.throttle_count:
        lines.append("Throttled: %s" % notify.text(a.throttle_count))
    if env.get("VIGIL_EXECUTION_ID"):
        lines.append("vigil execution: %s" % env["VIGIL_EXECUTION_ID"])
    if view.events:
        lines += ["", "Events:"]
        for ev in view.events[:EVENTS_SHOWN]:
            line = "- %s %s at %s" % (notify.text(ev.event_id) or "event", notify.text(ev.obj_name),
                                      notify.iso(ev.report_timestamp))
            if ev.event_details:
                line += ": " + notify.clip(ev.event_details, 300)
            lines.append(line)
        if len(view.events) > EVENTS_SHOWN:
            lines.append("- ...and %d more" % (len(view.events) - EVENTS_SHOWN))
    return notify.clip("\n".join(lines), TEXT_MAX)


class Instance:
    def __init__(self, policy, base, user, password):
        self.policy = policy
        self.base = base
        self.host = urllib.parse.urlsplit(base).hostname
        token = base64.b64encode(("%s:%s" % (user, password)).encode("utf-8")).decode("ascii")
        self.headers = {"Authorization": "Basic " + token, "Accept": "application/json"}

    def request(self, method, path, query=None, body=None):
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        label = "%s %s on %s" % (method, path, self.host)
        _, _, answer = notify.call(self.policy, method, url, label, data, headers, hint=wait_hint)
        try:
            result = json.loads(answer.decode("utf-8"))["result"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise notify.Failure("%s: the answer is not a Table API result: %s"
                                 % (label, notify.excerpt(answer))) from None
        return result

    def find(self, cid):
        query = {"sysparm_query": "correlation_id=%s^ORDERBYDESCsys_created_on" % cid,
                 "sysparm_limit": "1", "sysparm_fields": "sys_id,number,state"}
        found = self.request("GET", "/api/now/table/incident", query)
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise notify.Failure("GET /api/now/table/incident on %s: the result is not a list of records" % self.host)
        return found[0] if found else None

    def write(self, method, path, fields):
        rec = self.request(method, path, {"sysparm_fields": "sys_id,number,state"}, fields)
        if not isinstance(rec, dict):
            raise notify.Failure("%s %s on %s: the result is not a record" % (method, path, self.host))
        return rec


def wait_hint(headers, status):
    """Retry-After, else for a 429 the end of the rate limit window
    (X-RateLimit-Reset, a UNIX time)."""
    wait = notify.retry_after(headers)
    if wait is not None or headers is None or status != 429:
        return wait
    try:
        return max(0.0, float(headers.get("X-RateLimit-Reset")) - time.time())
    except (TypeError, ValueError):
        return None


def run():
    policy = notify.Policy(NAME, SETTINGS)
    base = notify.param("SERVICENOW_INSTANCE_URL").rstrip("/")
    if not base:
        raise notify.Failure("SERVICENOW_INSTANCE_URL is not set (the instance, such as "
                             "https://dev1234.service-now.com)")
    notify.check_url(base, "SERVICENOW_INSTANCE_URL")
    user = notify.secret("servicenow_user")
    password = notify.secret("servicenow_password")
    alert = notify.alert()
    view = notify.View(alert)
    env = vigil.env()
    cid = correlation_id(notify.alert_key(alert))
    sn = Instance(policy, base, user, password)
    grade = GRADE.get(view.level, "2")
    extra = {}
    for field, env_name in (("caller_id", "SERVICENOW_CALLER"),
                            ("assignment_group", "SERVICENOW_ASSIGNMENT_GROUP"),
                            ("category", "SERVICENOW_CATEGORY")):
        if notify.param(env_name):
            extra[field] = notify.param(env_name)

    def sync():
        found = sn.find(cid)

        def update(fields):
            path = "/api/now/table/incident/" + urllib.parse.quote(notify.text(found.get("sys_id")), safe="")
            return notify.text(sn.write("PATCH", path, fields).get("number") or found.get("number"))

        is_open = found is not None and notify.text(found.get("state")) not in DONE
        if view.resolved:
            if found is None:
                return "no incident with correlation_id %s; nothing to resolve" % cid
            if not is_open:
                return "%s is already resolved or closed" % notify.text(found.get("number"))
            notes = "Resolved by vigil: %s." % view.summary()
            return "resolved " + update({"state": RESOLVED,
                                         "close_code": notify.param("SERVICENOW_CLOSE_CODE", "Resolved by caller"),
                                         "close_notes": notify.clip(notes, TEXT_MAX)})
        if is_open:
            note = "vigil: alert delivered again: %s" % view.summary()
            if view.name:
                note += " (alert %s)" % view.name
            return "updated " + update({"work_notes": notify.clip(note, TEXT_MAX),
                                        "description": describe(view, env), "urgency": grade, "impact": grade})
        fields = {"short_description": notify.clip(view.title(), SHORT_MAX), "description": describe(view, env),
                  "urgency": grade, "impact": grade, "correlation_id": cid, "correlation_display": "vigil"}
        fields.update(extra)
        rec = sn.write("POST", "/api/now/table/incident", fields)
        return "created %s (sys_id %s)" % (notify.text(rec.get("number")), notify.text(rec.get("sys_id")))

    done = policy.run("sync incident", sync)
    print("%s: %s for %r, correlation_id %s" % (NAME, done, notify.clip(view.summary(), 120), cid))
    return 0


if __name__ == "__main__":
    notify.main(NAME, run)
