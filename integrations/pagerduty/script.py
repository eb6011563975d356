#!/usr/bin/env python3
"""Trigger and resolve a PagerDuty alert for a vigil alert (Events API v2).

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. The
integration's routing key comes from the Secret key pagerduty_routing_key
(env PAGERDUTY_ROUTING_KEY). A raised alert sends `trigger`, a resolved one
(reason "resolved") sends `resolve`, both with the same dedup_key: the
alert's name without its trailing event count. As PagerDuty documents, a 429
or a 5xx is retried (after Retry-After when given, else with capped
exponential backoff), a 400 fails without a retry. See README.md.
"""

import json

import vigil
from vigil import notify

NAME = "pagerduty"
# The parameters the retry policy reads: tries after the first, first
# backoff, time budget, timeout of one request.
SETTINGS = ("PAGERDUTY_RETRIES", "PAGERDUTY_RETRY_BASE", "PAGERDUTY_TIME_BUDGET", "PAGERDUTY_HTTP_TIMEOUT")
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"

# PagerDuty's limits: summary 1024 characters, dedup_key 255, a request
# 512 KB.
SUMMARY_MAX = 1024
DEDUP_MAX = 255
MAX_BYTES = 500 * 1024
SEVERITY = {"ALERT_HIGH": "critical", "ALERT_MEDIUM": "warning", "ALERT_LOW": "info"}


def stamp(view):
    """When the alert's latest event was reported, else when it was raised."""
    times = [notify.when(ev.report_timestamp) for ev in view.events]
    times = [t for t in times if t]
    if times:
        return max(times)
    shape = notify.split_name(view.name)
    return notify.when(shape[2]) if shape else None


def details(view, env, detail_limit=None, events_max=None):
    a = view.alert
    evs = view.events if events_max is None else view.events[:events_max]
    out = []
    for ev in evs:
        d = {"event_id": notify.text(ev.event_id), "obj_name": notify.text(ev.obj_name),
             "obj_uuid": notify.text(ev.obj_uuid), "report_timestamp": ev.report_timestamp}
        if ev.event_details:
            d["event_details"] = (ev.event_details if detail_limit is None
                                  else notify.clip(ev.event_details, detail_limit))
        out.append(d)
    cd = {"alert": view.name, "level": view.level, "reason": view.reason,
          "obj_name": notify.text(a.obj_name), "obj_uuid": notify.text(a.obj_uuid),
          "threshold": a.threshold, "throttle_count": a.throttle_count, "events": out}
    if len(out) < len(view.events):
        cd["events_omitted"] = len(view.events) - len(out)
    vig = {k: v for k, v in (("execution_id", env.get("VIGIL_EXECUTION_ID")), ("tenant", env.get("TENANT")))
           if v}
    if vig:
        cd["vigil"] = vig
    return cd


def event(view, env, routing_key, dedup_key):
    if view.resolved:
        return [{"routing_key": routing_key, "dedup_key": dedup_key, "event_action": "resolve"}]
    payload = {
        "summary": notify.clip(view.summary(), SUMMARY_MAX),
        "source": notify.clip(notify.param("PAGERDUTY_SOURCE") or view.obj, SUMMARY_MAX),
        "severity": SEVERITY.get(view.level, "error"),
        "component": notify.clip(view.obj, SUMMARY_MAX),
        "group": notify.clip(view.config, SUMMARY_MAX),
    }
    first = view.alert.event
    if first is not None and notify.text(first.event_id):
        payload["class"] = notify.clip(first.event_id, SUMMARY_MAX)
    t = stamp(view)
    if t:
        payload["timestamp"] = t.isoformat(timespec="seconds")
    base = {"routing_key": routing_key, "dedup_key": dedup_key, "event_action": "trigger",
            "client": notify.param("PAGERDUTY_CLIENT", "vigil")}
    client_url = notify.param("PAGERDUTY_CLIENT_URL")
    if client_url:
        notify.check_url(client_url, "PAGERDUTY_CLIENT_URL")
        base["client_url"] = client_url
    # Whole details first, then smaller ones until the event fits.
    tries = [(None, None), (2000, None), (500, 100), (200, 10), (0, 0)]
    return [dict(base, payload=dict(payload, custom_details=details(view, env, lim, n))) for lim, n in tries]


def encode(candidates):
    for c in candidates:
        body = json.dumps(c, ensure_ascii=False, default=str).encode("utf-8")
        if len(body) <= MAX_BYTES:
            return body
    raise notify.Failure("the event is %d bytes even without event details, over PagerDuty's 512 KB limit" % len(body))


def run():
    policy = notify.Policy(NAME, SETTINGS)
    routing_key = notify.secret("pagerduty_routing_key")
    url = notify.param("PAGERDUTY_EVENTS_URL", DEFAULT_URL)
    host = notify.check_url(url, "PAGERDUTY_EVENTS_URL")
    alert = notify.alert()
    view = notify.View(alert)
    dedup_key = notify.bounded(notify.alert_key(alert), DEDUP_MAX)
    action = "resolve" if view.resolved else "trigger"
    body = encode(event(view, vigil.env(), routing_key, dedup_key))
    label = "POST to %s" % host

    def post():
        return notify.call(policy, "POST", url, label, body, {"Content-Type": "application/json"})

    status, _, answer = policy.run("send %s to PagerDuty" % action, post)
    try:
        ans = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        ans = {}
    msg = notify.text(ans.get("message")) if isinstance(ans, dict) else ""
    print("%s: %s sent for %r, dedup_key %s (HTTP %d%s)"
          % (NAME, action, notify.clip(view.summary(), 120), dedup_key, status,
             ", " + notify.clip(msg, 60) if msg else ""))
    return 0


if __name__ == "__main__":
    notify.main(NAME, run)
