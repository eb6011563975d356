"""vigil.notify: what a ControlScript that sends an alert somewhere needs
(standard library only).

`import vigil` does not load this module; a script says
`from vigil import notify`. It gives the run's one-line failure
(Failure), parameters and Secret keys read from the environment, a retry
policy with a time budget, one HTTP request classified as success,
worth repeating or not, and the alert seen as a message (View, alert_key):

    import json

    from vigil import notify

    NAME = "chat"
    SETTINGS = ("CHAT_RETRIES", "CHAT_RETRY_BASE", "CHAT_TIME_BUDGET", "CHAT_HTTP_TIMEOUT")

    def run():
        policy = notify.Policy(NAME, SETTINGS)          # or notify.Policy(NAME, "CHAT")
        url = notify.secret("chat_webhook_url")         # env CHAT_WEBHOOK_URL
        host = notify.check_url(url, "chat_webhook_url")
        view = notify.View(notify.alert())
        body = json.dumps({"text": view.summary()}).encode()

        def post():
            return notify.call(policy, "POST", url, "POST to " + host, body,
                               {"Content-Type": "application/json"})

        status, _, _ = policy.run("send to chat", post)
        print("%s: sent (HTTP %d)" % (NAME, status))

    if __name__ == "__main__":
        notify.main(NAME, run)   # a Failure is one line on stderr and exit 1

See contrib/python/README.md.
"""

import datetime
import hashlib
import http.client
import json
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from ._contract import alert as _alert
from ._errors import AlertError
from ._version import __version__
from .params import Failure, number, param, secret

__all__ = [
    "Failure", "Retryable", "main",
    "param", "number", "secret", "alert",
    "Policy", "call", "check_url", "retry_after", "excerpt",
    "text", "clip", "when", "iso", "bounded",
    "LEVELS", "split_name", "alert_key", "View",
]


# ---- failing ------------------------------------------------------------------
# Failure, and the readers param, number and secret, are vigil.params'.

class Retryable(Exception):
    """An attempt failed in a way worth repeating. wait is the server's
    Retry-After in seconds, or None (then the policy backs off); status is
    the HTTP status of the answer, or None for a network error."""

    def __init__(self, why, wait=None, status=None):
        super().__init__(why)
        self.wait = wait
        self.status = status


def main(name, fn):
    """Run fn() as the script and exit with what it returns (None is 0). A
    Failure is printed as one line "<name>: <reason>" on stderr, and the
    exit status is 1."""
    try:
        code = fn()
    except Failure as e:
        print("%s: %s" % (name, e), file=sys.stderr)
        sys.exit(1)
    sys.exit(code)


# ---- the alert -------------------------------------------------------------------

def alert(raw=None):
    """vigil.alert(raw): the alert of sys.argv[1], parsed. One that is
    missing or not an alert is a Failure "bad alert: <why>"."""
    try:
        return _alert(raw)
    except AlertError as e:
        raise Failure("bad alert: %s" % e) from None


# ---- retries ---------------------------------------------------------------------

class Policy:
    """Retries of one run: at most `retries` more attempts, backoff from
    `base` seconds doubled each time up to 30s (with jitter), and every
    attempt and wait within `budget` seconds of the start.

    name is the integration's name: it starts each line about a retry and
    is in the User-Agent (vigil-<name>/<version>). params names the four
    parameters that tune it, in this order: the retries (default 4, 0..10),
    the first backoff in seconds (1, 0..60), the time budget in seconds
    (45, 1..3600) and the timeout of one request in seconds (`timeout`,
    0.1..300). It is that tuple of names, or a prefix P standing for
    P_RETRIES, P_RETRY_BASE, P_TIME_BUDGET and P_HTTP_TIMEOUT. A value out
    of range is a Failure. The clock starts when the policy is made.
    """

    MAX_BACKOFF = 30.0
    SUFFIXES = ("_RETRIES", "_RETRY_BASE", "_TIME_BUDGET", "_HTTP_TIMEOUT")

    def __init__(self, name, params, timeout=10.0):
        if isinstance(params, str):
            params = tuple(params + s for s in self.SUFFIXES)
        params = tuple(params)
        if len(params) != 4:
            raise ValueError("params: want a prefix or four names (retries, retry base, time budget, "
                             "HTTP timeout), got %r" % (params,))
        retries, base, budget, http_timeout = params
        self.name = name
        self.params = params
        self.user_agent = "vigil-%s/%s" % (name, __version__)
        self.retries = int(number(retries, 4, 0, 10))
        self.base = number(base, 1.0, 0, 60)
        self.budget = number(budget, 45.0, 1, 3600)
        self.budget_name = budget
        self.timeout = number(http_timeout, timeout, 0.1, 300)
        self.start = time.monotonic()

    def left(self):
        """Seconds left of the budget (negative once it is spent)."""
        return self.budget - (time.monotonic() - self.start)

    def backoff(self, attempt):
        """The wait after failed attempt number `attempt` (1, 2, ...) when
        the server named none: base * 2**(attempt-1), at most MAX_BACKOFF,
        times a random factor in [0.5, 1]."""
        return min(self.base * 2 ** (attempt - 1), self.MAX_BACKOFF) * random.uniform(0.5, 1.0)

    def run(self, what, op):
        """Call op() until it returns, retrying on Retryable, and return
        what it returns. Each retry is announced on stderr. Out of retries,
        or when the wait would overrun the budget, raise a Failure
        "<what>: <why>; gave up after N attempts". Any other exception
        passes through at once."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return op()
            except Retryable as e:
                why = "%s: %s" % (what, e)
                tries = "%d attempt%s" % (attempt, "" if attempt == 1 else "s")
                if attempt > self.retries:
                    raise Failure("%s; gave up after %s" % (why, tries), e.status) from None
                wait = e.wait if e.wait is not None else self.backoff(attempt)
                if wait > self.left():
                    raise Failure("%s; the next attempt (in %.1fs) would overrun %s (%gs); gave up "
                                  "after %s" % (why, wait, self.budget_name, self.budget, tries),
                                  e.status) from None
                print("%s: %s; retry %d of %d in %.1fs" % (self.name, why, attempt, self.retries, wait),
                      file=sys.stderr)
                time.sleep(wait)


# ---- HTTP -------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def check_url(url, what):
    """The host of url; a Failure "<what> is not an http(s) URL" unless it
    is one. The URL is not shown: it may hold a secret."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Failure("%s is not an http(s) URL" % what)
    return parts.hostname


def excerpt(data, limit=200):
    """data (bytes or str) as one line of at most limit characters (plus
    "..."): an HTML page's <title>, else the text with its runs of white
    space made one space."""
    s = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    m = re.search(r"<title>(.*?)</title>", s, re.I | re.S)
    if m:
        s = m.group(1)
    s = " ".join(s.split())
    return s[:limit] + ("..." if len(s) > limit else "")


def retry_after(headers, status=None):
    """The Retry-After header of headers in seconds from now (at least 0):
    delay-seconds or an HTTP date. None when absent or not understood. The
    signature is call()'s hint; status is not used."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import email.utils
        t = email.utils.parsedate_to_datetime(value)
        return max(0.0, t.timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def call(policy, method, url, label, body=None, headers=None, hint=retry_after):
    """One request, within policy's timeout and what is left of its budget
    (at least 0.5s). Redirects are not followed.

    Returns (status, headers, body) for a 2xx answer (body: at most 1 MiB).
    Raises Retryable for 429, 5xx, a timeout and a network error, with the
    wait hint(headers, status) gives (seconds or None) for an answer; raises
    Failure "... (not retried)" for any other status (a 3xx, a 4xx other
    than 429). Messages start with label, then "HTTP <status> <reason>: <an
    excerpt of the body>". The User-Agent is policy.user_agent unless
    headers give one."""
    hdrs = {"User-Agent": policy.user_agent}
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
        raise Retryable(why, hint(rh, status), status)
    raise Failure(why + " (not retried)", status)


# ---- text ---------------------------------------------------------------------------

def text(value):
    """value as a string: "" for None, a str as it is, anything else as
    sorted JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def clip(s, limit):
    """text(s), cut to at most limit characters ending with an ellipsis
    when longer."""
    s = text(s)
    return s if len(s) <= limit else s[:limit - 1] + "\u2026"


def when(ts):
    """A UNIX time (number or numeric string) as an aware UTC datetime, or
    None when it is not one."""
    try:
        return datetime.datetime.fromtimestamp(float(ts), datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def iso(ts):
    """A UNIX time as "YYYY-MM-DD HH:MM:SS UTC"; text(ts) when it is not one."""
    t = when(ts)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t else text(ts)


def bounded(key, limit):
    """key, or when longer than limit its head plus '~' and 16 hex digits
    of its SHA-256 (limit characters in all), so that distinct long keys
    stay distinct."""
    if len(key) <= limit:
        return key
    return key[:limit - 17] + "~" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


# ---- the alert ------------------------------------------------------------------------

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
    the resolve share it. A name in another shape is the key as it is; an
    alert without a name has "<obj_uuid or obj_name>:<first event_id>"."""
    name = text(alert.name)
    shape = split_name(name)
    if shape:
        return shape[0]
    if name:
        return name
    ev = alert.event
    return "%s:%s" % (text(alert.obj_uuid) or text(alert.obj_name) or "unknown",
                      text(ev.event_id) if ev else "")


class View:
    """What a message says about the alert: its name, level ("ALERT_HIGH",
    "unknown" when absent) and label ("HIGH"), reason and whether it is
    resolved, the object, the AlertConfig's name (config, from the alert's
    name), its events and their counts ("3 \u00d7 SERVER_DOWN")."""

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
        """The heading: HIGH alert: <config> on <obj>, or Resolved: <config>
        on <obj>."""
        if self.resolved:
            return "Resolved: %s on %s" % (self.config, self.obj)
        return "%s alert: %s on %s" % (self.label, self.config, self.obj)

    def summary(self):
        """One line: HIGH alert <config> on <obj> (<counts>), or Alert
        <config> on <obj> resolved (<counts>)."""
        if self.resolved:
            s = "Alert %s on %s resolved" % (self.config, self.obj)
        else:
            s = "%s alert %s on %s" % (self.label, self.config, self.obj)
        if self.counts:
            s += " (%s)" % self.counts
        return s
