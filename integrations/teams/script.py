#!/usr/bin/env python3
"""Post a vigil alert to a Microsoft Teams channel or chat as an Adaptive Card.

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. The
webhook URL of a Teams Workflows flow ("When a Teams webhook request is
received") comes from the Secret key teams_webhook_url (env
TEAMS_WEBHOOK_URL). The body is a message with one Adaptive Card 1.5
attachment, kept under Teams' 28 KB message limit. A 429 waits for its
Retry-After, a 5xx or a network error is retried with capped exponential
backoff, anything else fails at once. See README.md.
"""

import datetime
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

NAME = "teams"
# The retry parameters: tries after the first, first backoff, time budget,
# timeout of one request.
SETTINGS = ("TEAMS_RETRIES", "TEAMS_RETRY_BASE", "TEAMS_TIME_BUDGET", "TEAMS_HTTP_TIMEOUT")
USER_AGENT = "vigil-%s/%s" % (NAME, vigil.__version__)

# Teams refuses a message over 28 KB; stay below with room to spare.
MAX_BYTES = 27 * 1024
# The card's text limits, tried in turn until the message fits:
# (characters per text, characters per event line, events shown).
SHRINK = ((2000, 600, 10), (1000, 200, 5), (300, 100, 2), (150, 0, 0))


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


# ---- Teams ------------------------------------------------------------------

COLORS = {"HIGH": "attention", "MEDIUM": "warning", "LOW": "accent"}


def card(view, env, limit, line_limit, shown):
    a = view.alert
    color = "good" if view.resolved else COLORS.get(view.label, "default")
    facts = [("Level", view.level), ("Object", view.obj),
             ("Status", "resolved" if view.resolved else (view.reason or "raised"))]
    if view.counts:
        facts.append(("Events", view.counts))
    if a.threshold is not None:
        facts.append(("Threshold", text(a.threshold)))
    if a.throttle_count:
        facts.append(("Throttled", text(a.throttle_count)))
    if view.name:
        facts.append(("Alert", view.name))
    if env.get("VIGIL_EXECUTION_ID"):
        facts.append(("Execution", env["VIGIL_EXECUTION_ID"]))
    body = [
        {"type": "TextBlock", "text": clip(view.title(), limit), "style": "heading", "size": "large",
         "weight": "bolder", "color": color, "wrap": True},
        {"type": "TextBlock", "text": clip(view.summary(), limit), "wrap": True},
        {"type": "FactSet", "facts": [{"title": t, "value": clip(v, limit)} for t, v in facts]},
    ]
    if view.events and shown:
        body.append({"type": "TextBlock", "text": "Events", "weight": "bolder", "spacing": "medium", "wrap": True})
        for ev in view.events[:shown]:
            line = "%s %s at %s" % (text(ev.event_id) or "event", text(ev.obj_name), iso(ev.report_timestamp))
            if ev.event_details and line_limit:
                line += ": " + text(ev.event_details)
            body.append({"type": "TextBlock", "text": clip(line, max(line_limit, 150)), "wrap": True,
                         "isSubtle": True, "spacing": "small"})
        if len(view.events) > shown:
            body.append({"type": "TextBlock", "text": "\u2026and %d more" % (len(view.events) - shown),
                         "isSubtle": True, "wrap": True})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "fallbackText": clip(view.summary(), limit),
        "body": body,
    }


def message(view, env):
    """The message, as UTF-8 JSON no larger than MAX_BYTES."""
    for limit, line_limit, shown in SHRINK:
        msg = {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": card(view, env, limit, line_limit, shown),
        }]}
        body = json.dumps(msg, ensure_ascii=False).encode("utf-8")
        if len(body) <= MAX_BYTES:
            return body
    raise Failure("the card is %d bytes even cut down, over Teams' 28 KB limit" % len(body))


def main():
    policy = Policy()
    url = secret("teams_webhook_url")
    host = check_url(url, "teams_webhook_url")
    try:
        alert = vigil.alert()
    except vigil.AlertError as e:
        raise Failure("bad alert: %s" % e) from None
    view = View(alert)
    body = message(view, vigil.env())
    label = "POST to %s" % host

    def post():
        status, headers, answer = call(policy, "POST", url, label, body,
                                       {"Content-Type": "application/json; charset=utf-8"})
        # A connector answers 200 and reports its own throttling in the body.
        if b"HTTP error 429" in answer:
            raise Retryable("%s: throttled: %s" % (label, excerpt(answer)), retry_after(headers))
        return status, answer

    status, answer = policy.run("send to Teams", post)
    print("%s: sent %r to %s (HTTP %d, %d bytes)" % (NAME, clip(view.summary(), 120), host, status, len(body)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("%s: %s" % (NAME, e), file=sys.stderr)
        sys.exit(1)
