#!/usr/bin/env python3
"""POST a vigil alert as JSON to any URL, signed per Standard Webhooks.

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. The URL
comes from the Secret key webhook_url (env WEBHOOK_URL), the signing secret
("whsec_" + base64) from webhook_secret (env WEBHOOK_SECRET); without a
secret the request is sent unsigned. The body is
{"type", "timestamp", "data": {"alert", "key", ...}}; the headers are
webhook-id (the same for every attempt and re-delivery of one alert
delivery), webhook-timestamp and webhook-signature ("v1," + base64 of
HMAC-SHA256 over "id.timestamp.body"). A 429 waits for its Retry-After,
a 5xx or a network error is retried with capped exponential backoff, a
redirect, a 410 or any other status fails at once. See README.md.
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import time

import vigil
from vigil import notify

NAME = "webhook"
# The parameters the retry policy reads: tries after the first, first
# backoff, time budget, timeout of one request.
SETTINGS = ("WEBHOOK_RETRIES", "WEBHOOK_RETRY_BASE", "WEBHOOK_TIME_BUDGET", "WEBHOOK_HTTP_TIMEOUT")
# A cut-down document keeps this much of each long string and event detail,
# and this many events; data.key is at most KEY_MAX characters.
DETAIL_MAX = 1000
EVENTS_KEPT = 100
KEY_MAX = 255


def signing_key(value):
    """The HMAC key of a Standard Webhooks secret: base64 after "whsec_"."""
    raw = value[len("whsec_"):] if value.startswith("whsec_") else value
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise notify.Failure("webhook_secret is not a Standard Webhooks secret (\"whsec_\" followed by base64)")
    return key


def sign(key, msg_id, timestamp, body):
    """The webhook-signature value: "v1," + base64 HMAC-SHA256 of
    "msg_id.timestamp.body" (body as bytes)."""
    signed = b"%s.%d.%s" % (msg_id.encode("utf-8"), int(timestamp), body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def message_id(alert):
    """webhook-id: the same for every attempt and every re-delivery of this
    alert delivery (its name and reason; the whole alert when unnamed)."""
    name = notify.text(alert.name)
    if name:
        ident = "%s\n%s" % (name, notify.text(alert.reason))
    else:
        ident = json.dumps(alert.raw, sort_keys=True, separators=(",", ":"), default=str)
    return "msg_" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def occurred(view):
    """When it happened: now for a resolve, else the latest event's report
    time (the raise time when there are no events)."""
    if not view.resolved:
        times = [t for t in (notify.when(ev.report_timestamp) for ev in view.events) if t]
        if times:
            return max(times)
        shape = notify.split_name(view.name)
        if shape and notify.when(shape[2]):
            return notify.when(shape[2])
    return datetime.datetime.now(datetime.timezone.utc)


def document(view, env, alert_json):
    t = occurred(view).isoformat(timespec="seconds").replace("+00:00", "Z")
    data = {"alert": alert_json, "key": notify.bounded(notify.alert_key(view.alert), KEY_MAX),
            "summary": notify.clip(view.summary(), DETAIL_MAX), "resolved": view.resolved}
    for field, env_name in (("execution_id", "VIGIL_EXECUTION_ID"), ("tenant", "TENANT"),
                            ("user", "USER"), ("version", "VERSION")):
        if env.get(env_name):
            data[field] = env[env_name]
    return {"type": "vigil.alert.resolved" if view.resolved else "vigil.alert.raised",
            "timestamp": t, "data": data}


def smaller(raw):
    """The alert with each event's details cut to a JSON string of at most
    DETAIL_MAX characters, and at most EVENTS_KEPT events."""
    out = dict(raw)
    evs = raw.get("events") or []
    kept = []
    for ev in evs[:EVENTS_KEPT]:
        ev = dict(ev)
        if ev.get("event_details"):
            ev["event_details"] = notify.clip(ev["event_details"], DETAIL_MAX)
        kept.append(ev)
    out["events"] = kept
    for k, v in raw.items():
        if isinstance(v, str) and len(v) > DETAIL_MAX:
            out[k] = notify.clip(v, DETAIL_MAX)
    out["truncated"] = True
    return out


def run():
    policy = notify.Policy(NAME, SETTINGS, timeout=15.0)
    url = notify.secret("webhook_url")
    host = notify.check_url(url, "webhook_url")
    whsec = notify.secret("webhook_secret", required=False)
    key = signing_key(whsec) if whsec else None
    limit = int(notify.number("WEBHOOK_MAX_BYTES", 1 << 20, 1024, 64 << 20))
    alert = notify.alert()
    view = notify.View(alert)
    env = vigil.env()
    body = json.dumps(document(view, env, alert.raw), ensure_ascii=False, default=str).encode("utf-8")
    if len(body) > limit:
        body = json.dumps(document(view, env, smaller(alert.raw)), ensure_ascii=False, default=str).encode("utf-8")
    if len(body) > limit:
        raise notify.Failure("the document is %d bytes even cut down, over WEBHOOK_MAX_BYTES (%d)" % (len(body), limit))
    msg_id = message_id(alert)
    label = "POST to %s" % host

    def post():
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts)}
        if key is not None:
            headers["webhook-signature"] = sign(key, msg_id, ts, body)
        try:
            return notify.call(policy, "POST", url, label, body, headers)
        except notify.Failure as e:
            if e.status == 410:
                raise notify.Failure("%s; the endpoint no longer accepts these webhooks: update or remove "
                                     "webhook_url" % e, e.status) from None
            raise

    status, _, _ = policy.run("deliver webhook", post)
    print("%s: delivered %s %r to %s (%s, %s, HTTP %d)"
          % (NAME, msg_id, notify.clip(view.summary(), 120), host, "signed" if key is not None else "unsigned",
             "%d bytes" % len(body), status))
    return 0


if __name__ == "__main__":
    notify.main(NAME, run)
