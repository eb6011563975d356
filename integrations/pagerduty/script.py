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

import datetime
import hashlib
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

NAME = "pagerduty"
# The retry parameters: tries after the first, first backoff, time budget,
# timeout of one request.
SETTINGS = ("PAGERDUTY_RETRIES", "PAGERDUTY_RETRY_BASE", "PAGERDUTY_TIME_BUDGET", "PAGERDUTY_HTTP_TIMEOUT")
USER_AGENT = "vigil-%s/%s" % (NAME, vigil.__version__)
DEFAULT_URL = "https://events.pagerduty.com/v2/enqueue"

# PagerDuty's limits: summary 1024 characters, dedup_key 255, a request
# 512 KB.
SUMMARY_MAX = 1024
DEDUP_MAX = 255
MAX_BYTES = 500 * 1024
SEVERITY = {"ALERT_HIGH": "critical", "ALERT_MEDIUM": "warning", "ALERT_LOW": "info"}


class Failure(Exception):
    """The run failed; str() is the one-line reason."""


class Retryable(Exception):
    """An attempt failed in a way worth repeating; wait is the server's
    Retry-After in seconds, or None."""

    def __init__(self, why, wait=None):
        super().__init__(why)
        self.wait = wait


# ---- parameters and secrets ------------------------------------------------

def param(name, default=""):
    value = os.environ.get(name, "").strip()
    return value if value else default


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


# ---- PagerDuty --------------------------------------------------------------

def bounded(key, limit):
    """key, or when longer than limit its head plus '~' and 16 hex digits
    of its SHA-256, so that distinct long keys stay distinct."""
    if len(key) <= limit:
        return key
    return key[:limit - 17] + "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def stamp(view):
    """When the alert's latest event was reported, else when it was raised."""
    times = [when(ev.report_timestamp) for ev in view.events]
    times = [t for t in times if t]
    if times:
        return max(times)
    shape = split_name(view.name)
    return when(shape[2]) if shape else None


def details(view, env, detail_limit=None, events_max=None):
    a = view.alert
    evs = view.events if events_max is None else view.events[:events_max]
    out = []
    for ev in evs:
        d = {"event_id": text(ev.event_id), "obj_name": text(ev.obj_name), "obj_uuid": text(ev.obj_uuid),
             "report_timestamp": ev.report_timestamp}
        if ev.event_details:
            d["event_details"] = ev.event_details if detail_limit is None else clip(ev.event_details, detail_limit)
        out.append(d)
    cd = {"alert": view.name, "level": view.level, "reason": view.reason,
          "obj_name": text(a.obj_name), "obj_uuid": text(a.obj_uuid),
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
        "summary": clip(view.summary(), SUMMARY_MAX),
        "source": clip(param("PAGERDUTY_SOURCE") or view.obj, SUMMARY_MAX),
        "severity": SEVERITY.get(view.level, "error"),
        "component": clip(view.obj, SUMMARY_MAX),
        "group": clip(view.config, SUMMARY_MAX),
    }
    first = view.alert.event
    if first is not None and text(first.event_id):
        payload["class"] = clip(first.event_id, SUMMARY_MAX)
    t = stamp(view)
    if t:
        payload["timestamp"] = t.isoformat(timespec="seconds")
    base = {"routing_key": routing_key, "dedup_key": dedup_key, "event_action": "trigger",
            "client": param("PAGERDUTY_CLIENT", "vigil")}
    client_url = param("PAGERDUTY_CLIENT_URL")
    if client_url:
        check_url(client_url, "PAGERDUTY_CLIENT_URL")
        base["client_url"] = client_url
    # Whole details first, then smaller ones until the event fits.
    tries = [(None, None), (2000, None), (500, 100), (200, 10), (0, 0)]
    return [dict(base, payload=dict(payload, custom_details=details(view, env, lim, n))) for lim, n in tries]


def encode(candidates):
    for c in candidates:
        body = json.dumps(c, ensure_ascii=False, default=str).encode("utf-8")
        if len(body) <= MAX_BYTES:
            return body
    raise Failure("the event is %d bytes even without event details, over PagerDuty's 512 KB limit" % len(body))


def main():
    policy = Policy()
    routing_key = secret("pagerduty_routing_key")
    url = param("PAGERDUTY_EVENTS_URL", DEFAULT_URL)
    host = check_url(url, "PAGERDUTY_EVENTS_URL")
    try:
        alert = vigil.alert()
    except vigil.AlertError as e:
        raise Failure("bad alert: %s" % e) from None
    view = View(alert)
    dedup_key = bounded(alert_key(alert), DEDUP_MAX)
    action = "resolve" if view.resolved else "trigger"
    body = encode(event(view, vigil.env(), routing_key, dedup_key))
    label = "POST to %s" % host

    def post():
        return call(policy, "POST", url, label, body, {"Content-Type": "application/json"})

    status, _, answer = policy.run("send %s to PagerDuty" % action, post)
    try:
        ans = json.loads(answer.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        ans = {}
    msg = text(ans.get("message")) if isinstance(ans, dict) else ""
    print("%s: %s sent for %r, dedup_key %s (HTTP %d%s)"
          % (NAME, action, clip(view.summary(), 120), dedup_key, status, ", " + clip(msg, 60) if msg else ""))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("%s: %s" % (NAME, e), file=sys.stderr)
        sys.exit(1)
