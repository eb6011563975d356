#!/usr/bin/env python3
"""Post a vigil alert to a Slack channel through an incoming webhook.

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. The
webhook URL comes from the Secret key slack_webhook_url (env
SLACK_WEBHOOK_URL); SLACK_* parameters tune the message and the retries.
The message is Block Kit `blocks` with a top-level `text` fallback. A 429
waits for its Retry-After, a 5xx or a network error is retried with capped
exponential backoff, anything else fails at once. See README.md.
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

NAME = "slack"
# The retry parameters: tries after the first, first backoff, time budget,
# timeout of one request.
SETTINGS = ("SLACK_RETRIES", "SLACK_RETRY_BASE", "SLACK_TIME_BUDGET", "SLACK_HTTP_TIMEOUT")
USER_AGENT = "vigil-%s/%s" % (NAME, vigil.__version__)

# Slack's limits (docs.slack.dev/reference/block-kit): header text 150,
# section text 3000, a section field 2000 and at most 10 fields, a context
# block at most 10 elements; a message's text is cut at 40,000.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
TEXT_MAX = 3000
EVENTS_SHOWN = 5


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


# ---- Slack --------------------------------------------------------------------

def escape(s):
    return text(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md(s, limit):
    """Slack mrkdwn: &, < and > escaped, then cut to limit characters."""
    s = escape(s)
    if len(s) <= limit:
        return s
    return re.sub(r"&[a-z]{0,3}$", "", s[:limit - 1]) + "\u2026"


def field(title, value):
    return {"type": "mrkdwn", "text": md("*%s*\n%s" % (title, value), FIELD_MAX)}


def build(view, env):
    a = view.alert
    fields = [field("Level", view.level), field("Object", view.obj),
              field("Status", "resolved" if view.resolved else (view.reason or "raised"))]
    if view.counts:
        fields.append(field("Events", view.counts))
    if a.threshold is not None:
        fields.append(field("Threshold", text(a.threshold)))
    if a.throttle_count:
        fields.append(field("Throttled", text(a.throttle_count)))
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(view.title(), HEADER_MAX), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": md(view.summary(), SECTION_MAX)}},
        {"type": "section", "fields": fields[:FIELDS_MAX]},
    ]
    if view.events:
        lines = []
        for ev in view.events[:EVENTS_SHOWN]:
            line = "\u2022 *%s* %s at %s" % (text(ev.event_id) or "event", text(ev.obj_name),
                                             iso(ev.report_timestamp))
            if ev.event_details:
                line += "\n    " + clip(text(ev.event_details), 300)
            lines.append(line)
        if len(view.events) > EVENTS_SHOWN:
            lines.append("\u2026and %d more" % (len(view.events) - EVENTS_SHOWN))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": md("\n".join(lines), SECTION_MAX)}})
    context = "vigil"
    if view.name:
        context += " \u00b7 alert %s" % view.name
    if env.get("VIGIL_EXECUTION_ID"):
        context += " \u00b7 execution %s" % env["VIGIL_EXECUTION_ID"]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": md(context, SECTION_MAX)}]})
    msg = {"text": clip(view.summary(), TEXT_MAX), "blocks": blocks}
    for key, env_name in (("username", "SLACK_USERNAME"), ("icon_emoji", "SLACK_ICON_EMOJI"),
                          ("channel", "SLACK_CHANNEL")):
        value = param(env_name)
        if value:
            msg[key] = clip(value, 80)
    return msg


def main():
    policy = Policy()
    url = secret("slack_webhook_url")
    host = check_url(url, "slack_webhook_url")
    try:
        alert = vigil.alert()
    except vigil.AlertError as e:
        raise Failure("bad alert: %s" % e) from None
    view = View(alert)
    body = json.dumps(build(view, vigil.env()), ensure_ascii=False).encode("utf-8")
    label = "POST to %s" % host

    def post():
        return call(policy, "POST", url, label, body, {"Content-Type": "application/json; charset=utf-8"})

    status, _, answer = policy.run("send to Slack", post)
    print("%s: sent %r to %s (HTTP %d %s)" % (NAME, clip(view.summary(), 120), host, status,
                                              excerpt(answer, 40)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print("%s: %s" % (NAME, e), file=sys.stderr)
        sys.exit(1)
