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

NAME = "servicenow"
# The retry parameters: tries after the first, first backoff, time budget,
# timeout of one request.
SETTINGS = ("SERVICENOW_RETRIES", "SERVICENOW_RETRY_BASE", "SERVICENOW_TIME_BUDGET", "SERVICENOW_HTTP_TIMEOUT")
USER_AGENT = "vigil-%s/%s" % (NAME, vigil.__version__)

# Field lengths of the task table, which incident extends.
SHORT_MAX = 160
TEXT_MAX = 4000
CORRELATION_MAX = 100
# Incident states: 6 Resolved, 7 Closed, 8 Canceled.
RESOLVED, DONE = "6", ("6", "7", "8")
# urgency and impact by level: 1 high, 2 medium, 3 low.
GRADE = {"ALERT_HIGH": "1", "ALERT_MEDIUM": "2", "ALERT_LOW": "3"}
EVENTS_SHOWN = 20


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


def iso(ts):
    t = when(ts)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else text(ts)


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


# ---- ServiceNow -------------------------------------------------------------

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
             "Object: %s (%s)" % (text(a.obj_name) or "-", text(a.obj_uuid) or "-"),
             "Reason: %s" % (view.reason or "-")]
    if a.threshold is not None:
        lines.append("Threshold: %s" % text(a.threshold))
    if a.throttle_count:
        lines.append("Throttled: %s" % text(a.throttle_count))
    if env.get("VIGIL_EXECUTION_ID"):
        lines.append("vigil execution: %s" % env["VIGIL_EXECUTION_ID"])
    if view.events:
        lines += ["", "Events:"]
        for ev in view.events[:EVENTS_SHOWN]:
            line = "- %s %s at %s" % (text(ev.event_id) or "event", text(ev.obj_name), iso(ev.report_timestamp))
            if ev.event_details:
                line += ": " + clip(ev.event_details, 300)
            lines.append(line)
        if len(view.events) > EVENTS_SHOWN:
            lines.append("- ...and %d more" % (len(view.events) - EVENTS_SHOWN))
    return clip("\n".join(lines), TEXT_MAX)


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
        _, _, answer = call(self.policy, method, url, label, data, headers, hint=wait_hint)
        try:
            result = json.loads(answer.decode("utf-8"))["result"]
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise Failure("%s: the answer is not a Table API result: %s" % (label, excerpt(answer))) from None
        return result

    def find(self, cid):
        query = {"sysparm_query": "correlation_id=%s^ORDERBYDESCsys_created_on" % cid,
                 "sysparm_limit": "1", "sysparm_fields": "sys_id,number,state"}
        found = self.request("GET", "/api/now/table/incident", query)
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise Failure("GET /api/now/table/incident on %s: the result is not a list of records" % self.host)
        return found[0] if found else None

    def write(self, method, path, fields):
        rec = self.request(method, path, {"sysparm_fields": "sys_id,number,state"}, fields)
        if not isinstance(rec, dict):
            raise Failure("%s %s on %s: the result is not a record" % (method, path, self.host))
        return rec


def wait_hint(headers, status):
    """Retry-After, else for a 429 the end of the rate limit window
    (X-RateLimit-Reset, a UNIX time)."""
    wait = retry_after(headers)
    if wait is not None or headers is None or status != 429:
        return wait
    try:
        return max(0.0, float(headers.get("X-RateLimit-Reset")) - time.time())
    except (TypeError, ValueError):
        return None


def main():
    policy = Policy()
    base = param("SERVICENOW_INSTANCE_URL").rstrip("/")
    if not base:
        raise Failure("SERVICENOW_INSTANCE_URL is not set (the instance, such as https://dev1234.service-now.com)")
    check_url(base, "SERVICENOW_INSTANCE_URL")
    user = secret("servicenow_user")
    password = secret("servicenow_password")
    try:
        alert = vigil.alert()
    except vigil.AlertError as e:
        raise Failure("bad alert: %s" % e) from None
    view = View(alert)
    env = vigil.env()
    cid = correlation_id(alert_key(alert))
    sn = Instance(policy, base, user, password)
    grade = GRADE.get(view.level, "2")
    extra = {}
    for field, env_name in (("caller_id", "SERVICENOW_CALLER"),
                            ("assignment_group", "SERVICENOW_ASSIGNMENT_GROUP"),
                            ("category", "SERVICENOW_CATEGORY")):
        if param(env_name):
            extra[field] = param(env_name)

    def sync():
        found = sn.find(cid)

        def update(fields):
            path = "/api/now/table/incident/" + urllib.parse.quote(text(found.get("sys_id")), safe="")
            return text(sn.write("PATCH", path, fields).get("number") or found.get("number"))

        is_open = found is not None and text(found.get("state")) not in DONE
        if view.resolved:
            if found is None:
                return "no incident with correlation_id %s; nothing to resolve" % cid
            if not is_open:
                return "%s is already resolved or closed" % text(found.get("number"))
            notes = "Resolved by vigil: %s." % view.summary()
            return "resolved " + update({"state": RESOLVED,
                                         "close_code": param("SERVICENOW_CLOSE_CODE", "Resolved by caller"),
                                         "close_notes": clip(notes, TEXT_MAX)})
        if is_open:
            note = "vigil: alert delivered again: %s" % view.summary()
            if view.name:
                note += " (alert %s)" % view.name
            return "updated " + update({"work_notes": clip(note, TEXT_MAX), "description": describe(view, env),
                                        "urgency": grade, "impact": grade})
        fields = {"short_description": clip(view.title(), SHORT_MAX), "description": describe(view, env),
                  "urgency": grade, "impact": grade, "correlation_id": cid, "correlation_display": "vigil"}
        fields.update(extra)
        rec = sn.write("POST", "/api/now/table/incident", fields)
        return "created %s (sys_id %s)" % (text(rec.get("number")), text(rec.get("sys_id")))

    done = policy.run("sync incident", sync)
    print("%s: %s for %r, correlation_id %s" % (NAME, done, clip(view.summary(), 120), cid))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("%s: %s" % (NAME, e), file=sys.stderr)
        sys.exit(1)
