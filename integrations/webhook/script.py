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
import http.client
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import vigil

NAME = "webhook"
# The retry parameters: tries after the first, first backoff, time budget,
# timeout of one request.
SETTINGS = ("WEBHOOK_RETRIES", "WEBHOOK_RETRY_BASE", "WEBHOOK_TIME_BUDGET", "WEBHOOK_HTTP_TIMEOUT")
USER_AGENT = "vigil-%s/%s" % (NAME, vigil.__version__)
# A cut-down document keeps this much of each long string and event detail,
# and this many events; data.key is at most KEY_MAX characters.
DETAIL_MAX = 1000
EVENTS_KEPT = 100
KEY_MAX = 255


class Failure(Exception):
    """The run failed; str() is the one-line reason."""


class Retryable(Exception):
    """An attempt failed in a way worth repeating; wait is the server's
    Retry-After in seconds, or None."""

    def __init__(self, why, wait=None):
        super().__init__(why)
        self.wait = wait


# ---- parameters and secrets ------------------------------------------------

def number(name, default, lo, hi):
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise Failure("%s must be a number, got %r" % (name, raw[:40])) from None
    if not lo <= value <= hi:
        raise Failure("%s must be between %g and %g, got %s" % (name, lo, hi, raw[:40]))
    return value


def secret(key, required=True):
    env = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    value = os.environ.get(env, "").strip()
    if not value and required:
        raise Failure("secret key %s is not set (env %s): add it to a Secret listed in the "
                      "ControlScript's secrets" % (key, env))
    return value


class Policy:
    """Retries of one run: at most `retries` more attempts, backoff from
    `base` seconds doubled each time up to 30s (with jitter), and every
    attempt and wait within `budget` seconds of the start."""

    MAX_BACKOFF = 30.0

    def __init__(self, timeout=10.0):
        retries, base, budget, http_timeout = SETTINGS
        self.retries = int(number(retries, 4, 0, 10))
        self.base = number(base, 1.0, 0, 60)
        self.budget = number(budget, 45.0, 1, 3600)
        self.budget_name = budget
        self.timeout = number(http_timeout, timeout, 0.1, 300)
        self.start = time.monotonic()

    def left(self):
        return self.budget - (time.monotonic() - self.start)

    def backoff(self, attempt):
        return min(self.base * 2 ** (attempt - 1), self.MAX_BACKOFF) * random.uniform(0.5, 1.0)

    def run(self, what, op):
        """Call op() until it returns, retrying on Retryable."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return op()
            except Retryable as e:
                why = "%s: %s" % (what, e)
                tries = "%d attempt%s" % (attempt, "" if attempt == 1 else "s")
                if attempt > self.retries:
                    raise Failure("%s; gave up after %s" % (why, tries)) from None
                wait = e.wait if e.wait is not None else self.backoff(attempt)
                if wait > self.left():
                    raise Failure("%s; the next attempt (in %.1fs) would overrun %s (%gs); gave up "
                                  "after %s" % (why, wait, self.budget_name, self.budget, tries)) from None
                print("%s: %s; retry %d of %d in %.1fs" % (NAME, why, attempt, self.retries, wait),
                      file=sys.stderr)
                time.sleep(wait)


# ---- HTTP -------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def check_url(url, what):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Failure("%s is not an http(s) URL" % what)
    return parts.hostname


def excerpt(data, limit=200):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    m = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
    if m:
        text = m.group(1)
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")


def retry_after(headers, status=None):
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import email.utils
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def call(policy, method, url, label, body=None, headers=None, hint=retry_after):
    """One request. Returns (status, headers, body) for a 2xx answer; raises
    Retryable for 429, 5xx and network errors (with hint(headers, status),
    the server's wait in seconds or None), Failure for anything else."""
    hdrs = {"User-Agent": USER_AGENT}
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=body, method=method, headers=hdrs)
    timeout = max(0.5, min(policy.timeout, policy.left()))
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read(1 << 20)
    except urllib.error.HTTPError as e:
        status, rh = e.code, e.headers
        try:
            data = e.read(1 << 16)
        except (OSError, http.client.HTTPException):
            data = b""
    except TimeoutError:
        raise Retryable("%s: no answer within %gs" % (label, timeout)) from None
    except urllib.error.URLError as e:
        raise Retryable("%s: cannot connect: %s" % (label, excerpt(str(e.reason)))) from None
    except (OSError, http.client.HTTPException) as e:
        raise Retryable("%s: connection failed: %s" % (label, excerpt(str(e) or type(e).__name__))) from None
    why = "%s: HTTP %d %s" % (label, status, http.client.responses.get(status, ""))
    detail = excerpt(data)
    if detail:
        why += ": " + detail
    if status == 429 or status >= 500:
        raise Retryable(why, hint(rh, status))
    raise Failure(why + " (not retried)")


# ---- the alert --------------------------------------------------------------

def text(value):
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def clip(s, limit):
    s = text(s)
    return s if len(s) <= limit else s[:limit - 1] + "\u2026"


LEVELS = {"ALERT_HIGH": "HIGH", "ALERT_MEDIUM": "MEDIUM", "ALERT_LOW": "LOW"}


def split_name(name):
    """vigil names an alert <config>-<obj>-<raised>-<raised unix>-<events>.
    Returns (base without the event count, config-and-object, raised), or
    None when the name is not in that shape."""
    parts = name.rsplit("-", 3)
    if len(parts) != 4 or not all(p.isdigit() for p in parts[2:]):
        return None
    whole, _, frac = parts[1].partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    return name[:len(name) - len(parts[3]) - 1], parts[0], float(parts[1])


def alert_key(alert):
    """The alert's identity across its deliveries: the name without its
    trailing event count, so a raise, later deliveries with more events and
    the resolve share it."""
    name = text(alert.name)
    shape = split_name(name)
    if shape:
        return shape[0]
    if name:
        return name
    ev = alert.event
    return "%s:%s" % (text(alert.obj_uuid) or text(alert.obj_name) or "unknown",
                      text(ev.event_id) if ev else "")


def when(ts):
    try:
        return datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


class View:
    """What the message says about the alert."""

    def __init__(self, alert):
        self.alert = alert
        self.name = text(alert.name)
        self.level = text(alert.level) or "unknown"
        self.label = LEVELS.get(self.level, self.level.upper() or "UNKNOWN")
        self.reason = text(alert.reason)
        self.resolved = self.reason == "resolved"
        self.obj = text(alert.obj_name) or text(alert.obj_uuid) or "unknown object"
        obj_id = text(alert.obj_uuid) or text(alert.obj_name)
        shape = split_name(self.name)
        config = ""
        if shape:
            base = shape[1]
            config = base[:-len(obj_id) - 1] if obj_id and base.endswith("-" + obj_id) else base
        self.config = config or self.name or "alert"
        self.events = alert.events
        counts = {}
        for ev in self.events:
            eid = text(ev.event_id) or "event"
            counts[eid] = counts.get(eid, 0) + 1
        self.counts = ", ".join("%d \u00d7 %s" % (n, eid) for eid, n in counts.items())

    def title(self):
        if self.resolved:
            return "Resolved: %s on %s" % (self.config, self.obj)
        return "%s alert: %s on %s" % (self.label, self.config, self.obj)

    def summary(self):
        if self.resolved:
            s = "Alert %s on %s resolved" % (self.config, self.obj)
        else:
            s = "%s alert %s on %s" % (self.label, self.config, self.obj)
        if self.counts:
            s += " (%s)" % self.counts
        return s


# ---- Standard Webhooks ------------------------------------------------------

def signing_key(value):
    """The HMAC key of a Standard Webhooks secret: base64 after "whsec_"."""
    raw = value[len("whsec_"):] if value.startswith("whsec_") else value
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise Failure("webhook_secret is not a Standard Webhooks secret (\"whsec_\" followed by base64)")
    return key


def sign(key, msg_id, timestamp, body):
    """The webhook-signature value: "v1," + base64 HMAC-SHA256 of
    "msg_id.timestamp.body" (body as bytes)."""
    signed = b"%s.%d.%s" % (msg_id.encode("utf-8"), int(timestamp), body)
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def message_id(alert):
    """webhook-id: the same for every attempt and every re-delivery of this
    alert delivery (its name and reason; the whole alert when unnamed)."""
    name = text(alert.name)
    if name:
        ident = "%s\n%s" % (name, text(alert.reason))
    else:
        ident = json.dumps(alert.raw, sort_keys=True, separators=(",", ":"), default=str)
    return "msg_" + hashlib.sha256(ident.encode("utf-8")).hexdigest()[:32]


def occurred(view):
    """When it happened: now for a resolve, else the latest event's report
    time (the raise time when there are no events)."""
    if not view.resolved:
        times = [t for t in (when(ev.report_timestamp) for ev in view.events) if t]
        if times:
            return max(times)
        shape = split_name(view.name)
        if shape and when(shape[2]):
            return when(shape[2])
    return datetime.datetime.now(datetime.timezone.utc)


def bounded(key, limit):
    """key, or when longer than limit its head plus '~' and 16 hex digits
    of its SHA-256, so that distinct long keys stay distinct."""
    if len(key) <= limit:
        return key
    return key[:limit - 17] + "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def document(view, env, alert_json):
    t = occurred(view).isoformat(timespec="seconds").replace("+00:00", "Z")
    data = {"alert": alert_json, "key": bounded(alert_key(view.alert), KEY_MAX),
            "summary": clip(view.summary(), DETAIL_MAX), "resolved": view.resolved}
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
            ev["event_details"] = clip(ev["event_details"], DETAIL_MAX)
        kept.append(ev)
    out["events"] = kept
    for k, v in raw.items():
        if isinstance(v, str) and len(v) > DETAIL_MAX:
            out[k] = clip(v, DETAIL_MAX)
    out["truncated"] = True
    return out


def main():
    policy = Policy(timeout=15.0)
    url = secret("webhook_url")
    host = check_url(url, "webhook_url")
    whsec = secret("webhook_secret", required=False)
    key = signing_key(whsec) if whsec else None
    limit = int(number("WEBHOOK_MAX_BYTES", 1 << 20, 1024, 64 << 20))
    try:
        alert = vigil.alert()
    except vigil.AlertError as e:
        raise Failure("bad alert: %s" % e) from None
    view = View(alert)
    env = vigil.env()
    body = json.dumps(document(view, env, alert.raw), ensure_ascii=False, default=str).encode("utf-8")
    if len(body) > limit:
        body = json.dumps(document(view, env, smaller(alert.raw)), ensure_ascii=False, default=str).encode("utf-8")
    if len(body) > limit:
        raise Failure("the document is %d bytes even cut down, over WEBHOOK_MAX_BYTES (%d)" % (len(body), limit))
    msg_id = message_id(alert)
    label = "POST to %s" % host

    def post():
        ts = int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": str(ts)}
        if key is not None:
            headers["webhook-signature"] = sign(key, msg_id, ts, body)
        try:
            return call(policy, "POST", url, label, body, headers)
        except Failure as e:
            if ": HTTP 410 " in str(e):
                raise Failure("%s; the endpoint no longer accepts these webhooks: update or remove "
                              "webhook_url" % e) from None
            raise

    status, _, _ = policy.run("deliver webhook", post)
    print("%s: delivered %s %r to %s (%s, %s, HTTP %d)"
          % (NAME, msg_id, clip(view.summary(), 120), host, "signed" if key is not None else "unsigned",
             "%d bytes" % len(body), status))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("%s: %s" % (NAME, e), file=sys.stderr)
        sys.exit(1)
