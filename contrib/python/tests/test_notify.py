"""Tests of vigil.notify, the part notification scripts share: parameters,
the retry policy and its time budget, Retry-After, one HTTP request against
a real server on loopback, and how an alert is named and shown.

Run: cd contrib/python && /usr/bin/python3 -m unittest discover -s tests -v
"""

import datetime
import email.utils
import http.server
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from contextlib import redirect_stderr
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import vigil  # noqa: E402
from vigil import notify  # noqa: E402

SETTINGS = ("CHAT_RETRIES", "CHAT_RETRY_BASE", "CHAT_TIME_BUDGET", "CHAT_HTTP_TIMEOUT")

NAMED = {
    "name": "web-down-pool-1-1700000000.123456-1700000000-3", "level": "ALERT_HIGH",
    "reason": "threshold_exceeded", "obj_name": "web", "obj_uuid": "pool-1",
    "events": [{"event_id": "SERVER_DOWN", "obj_name": "web", "report_timestamp": 1700000000 + i}
               for i in range(3)],
}


class EnvCase(unittest.TestCase):
    """Each test gets its own copy of the environment, without CHAT_*."""

    def setUp(self):
        patcher = mock.patch.dict(os.environ, {k: v for k, v in os.environ.items()
                                               if not k.startswith("CHAT_")}, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)

    def policy(self, **env):
        os.environ.update({"CHAT_" + k: str(v) for k, v in env.items()})
        return notify.Policy("chat", SETTINGS)


class NamesTest(unittest.TestCase):
    def test_public_names(self):
        """notify's names are its own, not vigil's (test_vigil's ImportTest
        checks that import vigil does not load notify)."""
        for name in notify.__all__:
            self.assertTrue(hasattr(notify, name), name)
        self.assertFalse(hasattr(vigil, "Policy"))


class ParamTest(EnvCase):
    def test_param(self):
        self.assertEqual(notify.param("CHAT_X"), "")
        self.assertEqual(notify.param("CHAT_X", "d"), "d")
        os.environ["CHAT_X"] = "   "
        self.assertEqual(notify.param("CHAT_X", "d"), "d")
        os.environ["CHAT_X"] = " v "
        self.assertEqual(notify.param("CHAT_X", "d"), "v")

    def test_number(self):
        self.assertEqual(notify.number("CHAT_N", 7, 0, 10), 7)
        os.environ["CHAT_N"] = " 2.5 "
        self.assertEqual(notify.number("CHAT_N", 7, 0, 10), 2.5)
        os.environ["CHAT_N"] = "lots"
        with self.assertRaises(notify.Failure) as cm:
            notify.number("CHAT_N", 7, 0, 10)
        self.assertEqual(str(cm.exception), "CHAT_N must be a number, got 'lots'")
        os.environ["CHAT_N"] = "11"
        with self.assertRaises(notify.Failure) as cm:
            notify.number("CHAT_N", 7, 0, 10)
        self.assertEqual(str(cm.exception), "CHAT_N must be between 0 and 10, got 11")

    def test_secret(self):
        os.environ["CHAT_WEBHOOK_URL"] = " https://x/y "
        self.assertEqual(notify.secret("chat_webhook_url"), "https://x/y")
        os.environ["CHAT_API_KEY"] = "k"
        self.assertEqual(notify.secret("chat-api.key"), "k")
        self.assertEqual(notify.secret("chat_missing", required=False), "")
        with self.assertRaises(notify.Failure) as cm:
            notify.secret("chat_missing")
        self.assertEqual(str(cm.exception), "secret key chat_missing is not set (env CHAT_MISSING): add it to "
                                            "a Secret listed in the ControlScript's secrets")

    def test_alert(self):
        self.assertEqual(notify.alert(NAMED).name, NAMED["name"])
        for raw, why in (("{nope", "bad alert: the alert is not JSON"),
                         ("[1]", "bad alert: the alert must be a JSON object"),
                         ({"events": 5}, "bad alert: alert field events must be a list")):
            with self.assertRaises(notify.Failure) as cm:
                notify.alert(raw)
            self.assertTrue(str(cm.exception).startswith(why), str(cm.exception))
            self.assertIsNone(cm.exception.__cause__)


class PolicyTest(EnvCase):
    def test_defaults_and_names(self):
        p = self.policy()
        self.assertEqual((p.retries, p.base, p.budget, p.timeout), (4, 1.0, 45.0, 10.0))
        self.assertEqual(p.params, SETTINGS)
        self.assertEqual(p.user_agent, "vigil-chat/" + vigil.__version__)
        self.assertEqual(notify.Policy("chat", SETTINGS, timeout=15).timeout, 15)
        p = self.policy(RETRIES=2, RETRY_BASE=0.5, TIME_BUDGET=60, HTTP_TIMEOUT=3)
        self.assertEqual((p.retries, p.base, p.budget, p.timeout), (2, 0.5, 60.0, 3.0))
        self.assertEqual(notify.Policy("chat", "CHAT").params, SETTINGS)
        self.assertEqual(notify.Policy("chat", "CHAT").retries, 2)

    def test_bad_settings(self):
        for name, value, want in (("RETRIES", "11", "CHAT_RETRIES must be between 0 and 10"),
                                  ("RETRY_BASE", "x", "CHAT_RETRY_BASE must be a number"),
                                  ("TIME_BUDGET", "0", "CHAT_TIME_BUDGET must be between 1 and 3600"),
                                  ("HTTP_TIMEOUT", "301", "CHAT_HTTP_TIMEOUT must be between 0.1 and 300")):
            with mock.patch.dict(os.environ, {"CHAT_" + name: value}):
                with self.assertRaises(notify.Failure) as cm:
                    notify.Policy("chat", SETTINGS)
                self.assertIn(want, str(cm.exception))
        with self.assertRaises(ValueError):
            notify.Policy("chat", ("CHAT_RETRIES", "CHAT_RETRY_BASE"))

    def test_backoff(self):
        p = self.policy(RETRY_BASE=2)
        with mock.patch("random.uniform", return_value=1.0):
            self.assertEqual([p.backoff(n) for n in range(1, 7)], [2, 4, 8, 16, 30, 30])
        with mock.patch("random.uniform", return_value=0.5):
            self.assertEqual(p.backoff(2), 2)
        for n in range(1, 6):
            self.assertTrue(0.5 * min(2 ** n, 30) <= p.backoff(n) <= min(2 ** n, 30))

    def run_policy(self, p, outcomes):
        """p.run over outcomes (exceptions raised in turn, then "done"),
        with time.sleep recorded; returns (result or exception, sleeps,
        calls, stderr)."""
        calls, sleeps = [], []

        def op():
            calls.append(1)
            if len(calls) <= len(outcomes):
                raise outcomes[len(calls) - 1]
            return "done"
        err = io.StringIO()
        with mock.patch("time.sleep", sleeps.append), redirect_stderr(err):
            try:
                result = p.run("send to chat", op)
            except notify.Failure as e:
                result = e
        return result, sleeps, len(calls), err.getvalue()

    def test_run_retries_then_succeeds(self):
        p = self.policy(RETRY_BASE=0.25)
        with mock.patch("random.uniform", return_value=1.0):
            result, sleeps, calls, err = self.run_policy(
                p, [notify.Retryable("POST to h: HTTP 503 Service Unavailable"),
                    notify.Retryable("POST to h: HTTP 429 Too Many Requests", 2.0)])
        self.assertEqual((result, sleeps, calls), ("done", [0.25, 2.0], 3))
        self.assertEqual(err.splitlines(), [
            "chat: send to chat: POST to h: HTTP 503 Service Unavailable; retry 1 of 4 in 0.2s",
            "chat: send to chat: POST to h: HTTP 429 Too Many Requests; retry 2 of 4 in 2.0s",
        ])

    def test_run_gives_up(self):
        p = self.policy(RETRIES=2, RETRY_BASE=0)
        result, sleeps, calls, _ = self.run_policy(p, [notify.Retryable("boom %d" % i, status=502)
                                                       for i in range(5)])
        self.assertEqual((calls, len(sleeps)), (3, 2))
        self.assertIsInstance(result, notify.Failure)
        self.assertEqual(str(result), "send to chat: boom 2; gave up after 3 attempts")
        self.assertEqual(result.status, 502)
        result, _, calls, _ = self.run_policy(self.policy(RETRIES=0), [notify.Retryable("boom")])
        self.assertEqual((str(result), calls), ("send to chat: boom; gave up after 1 attempt", 1))

    def test_retry_after_over_the_budget_fails_at_once(self):
        p = self.policy(TIME_BUDGET=45)
        result, sleeps, calls, err = self.run_policy(p, [notify.Retryable("HTTP 429", 3600.0, 429)])
        self.assertEqual((calls, sleeps, err), (1, [], ""))
        self.assertEqual(str(result), "send to chat: HTTP 429; the next attempt (in 3600.0s) would overrun "
                                      "CHAT_TIME_BUDGET (45s); gave up after 1 attempt")

    def test_budget_spent(self):
        p = self.policy(TIME_BUDGET=10, RETRY_BASE=1)
        self.assertAlmostEqual(p.left(), 10, delta=1)
        p.start -= 9.8  # 0.2s left: a backoff of 0.5..1s does not fit
        result, sleeps, calls, _ = self.run_policy(p, [notify.Retryable("HTTP 503")])
        self.assertEqual((calls, sleeps), (1, []))
        self.assertIn("would overrun CHAT_TIME_BUDGET (10s); gave up after 1 attempt", str(result))

    def test_other_errors_pass_through(self):
        p = self.policy()
        failure = notify.Failure("POST to h: HTTP 400 Bad Request (not retried)", 400)
        self.assertEqual(self.run_policy(p, [failure])[:3], (failure, [], 1))
        with self.assertRaises(KeyError):
            self.run_policy(p, [KeyError("x")])


class RetryAfterTest(unittest.TestCase):
    def test_seconds(self):
        for value, want in (("3", 3.0), ("1.5", 1.5), ("0", 0.0), ("-5", 0.0)):
            self.assertEqual(notify.retry_after({"Retry-After": value}), want, value)

    def test_http_date(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        later = email.utils.format_datetime(now + datetime.timedelta(seconds=30), usegmt=True)
        self.assertTrue(later.endswith(" GMT"), later)
        self.assertAlmostEqual(notify.retry_after({"Retry-After": later}), 30, delta=2)
        self.assertEqual(notify.retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), 0.0)

    def test_absent_or_not_understood(self):
        for headers in (None, {}, {"Retry-After": ""}, {"Retry-After": "soon"}, {"X-Other": "3"}):
            self.assertIsNone(notify.retry_after(headers), headers)


# ---- a vendor on loopback ---------------------------------------------------------

class Vendor:
    """An http.server on 127.0.0.1 answering from a list of replies (status,
    headers, body, delay), the last repeated; it records each request."""

    def __init__(self):
        self.replies = [(200, {}, b"ok", 0)]
        self.seen = []
        vendor = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                vendor.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(n)))
                i = min(len(vendor.seen), len(vendor.replies)) - 1
                status, headers, body, delay = vendor.replies[i]
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting
                    pass

            do_GET = do_POST = do_PATCH = answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, *replies):
        self.replies = [r + (0,) * (4 - len(r)) for r in replies]
        self.seen = []

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class CallTest(EnvCase):
    @classmethod
    def setUpClass(cls):
        cls.vendor = Vendor()

    @classmethod
    def tearDownClass(cls):
        cls.vendor.close()

    def call(self, path="/hook", policy=None, **kw):
        return notify.call(policy or self.policy(), "POST", self.vendor.url + path, "POST to chat",
                           b'{"text": "hi"}', {"Content-Type": "application/json"}, **kw)

    def test_2xx(self):
        for status in (200, 201, 202, 204):
            body = b"" if status == 204 else b'{"ok": true}'
            self.vendor.reply((status, {"X-Id": "7"}, body))
            got, headers, answer = self.call()
            self.assertEqual((got, headers["X-Id"], answer), (status, "7", body))
        method, path, headers, body = self.vendor.seen[0]
        self.assertEqual((method, path, body), ("POST", "/hook", b'{"text": "hi"}'))
        self.assertEqual(headers["User-Agent"], "vigil-chat/" + vigil.__version__)
        self.assertEqual(headers["Content-Type"], "application/json")

    def test_429_is_retryable_with_retry_after(self):
        self.vendor.reply((429, {"Retry-After": "7"}, b"slow down"))
        with self.assertRaises(notify.Retryable) as cm:
            self.call()
        e = cm.exception
        self.assertEqual((str(e), e.wait, e.status), ("POST to chat: HTTP 429 Too Many Requests: slow down", 7.0, 429))

    def test_5xx_is_retryable(self):
        self.vendor.reply((503, {}, b"<html><head><title>Down | Vendor</title></head><body>long</body></html>"))
        with self.assertRaises(notify.Retryable) as cm:
            self.call()
        e = cm.exception
        self.assertEqual((str(e), e.wait, e.status),
                         ("POST to chat: HTTP 503 Service Unavailable: Down | Vendor", None, 503))
        self.vendor.reply((500, {}, b""))
        with self.assertRaises(notify.Retryable) as cm:
            self.call()
        self.assertEqual(str(cm.exception), "POST to chat: HTTP 500 Internal Server Error")

    def test_hint(self):
        seen = []

        def hint(headers, status):
            seen.append((headers.get("X-RateLimit-Reset"), status))
            return 1.25
        self.vendor.reply((429, {"X-RateLimit-Reset": "99"}, b""))
        with self.assertRaises(notify.Retryable) as cm:
            self.call(hint=hint)
        self.assertEqual((cm.exception.wait, seen), (1.25, [("99", 429)]))

    def test_other_4xx_fails(self):
        for status, reason in ((400, "Bad Request"), (403, "Forbidden"), (404, "Not Found"), (410, "Gone")):
            self.vendor.reply((status, {}, b'{"error": "no"}'))
            with self.assertRaises(notify.Failure) as cm:
                self.call()
            self.assertEqual(str(cm.exception), 'POST to chat: HTTP %d %s: {"error": "no"} (not retried)'
                             % (status, reason))
            self.assertEqual((cm.exception.status, len(self.vendor.seen)), (status, 1))

    def test_redirect_is_not_followed(self):
        for status in (301, 302, 307, 308):
            self.vendor.reply((status, {"Location": self.vendor.url + "/elsewhere"}, b""))
            with self.assertRaises(notify.Failure) as cm:
                self.call()
            self.assertIn("POST to chat: HTTP %d " % status, str(cm.exception))
            self.assertTrue(str(cm.exception).endswith("(not retried)"))
            self.assertEqual([s[1] for s in self.vendor.seen], ["/hook"])

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with self.assertRaises(notify.Retryable) as cm:
            notify.call(self.policy(), "POST", "http://127.0.0.1:%d/hook" % port, "POST to chat")
        self.assertTrue(str(cm.exception).startswith("POST to chat: cannot connect: "), str(cm.exception))
        self.assertIn("refused", str(cm.exception))
        self.assertEqual((cm.exception.wait, cm.exception.status), (None, None))

    def test_no_answer_in_time(self):
        self.vendor.reply((200, {}, b"late", 1.5))
        t = time.monotonic()
        with self.assertRaises(notify.Retryable) as cm:
            self.call(policy=self.policy(HTTP_TIMEOUT=0.1))  # a request gets at least 0.5s
        self.assertEqual(str(cm.exception), "POST to chat: no answer within 0.5s")
        self.assertLess(time.monotonic() - t, 1.4)

    def test_readme_example(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        section = readme[readme.index("## Notification scripts: `vigil.notify`"):]
        source = section[section.index("```python\n") + 10:section.index("```\n")]
        self.vendor.reply((503, {}, b"busy"), (200, {}, b"ok"))
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "script.py")
            with open(script, "w") as f:
                f.write(source)
            env = dict(os.environ, PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8", CHAT_RETRY_BASE="0.01",
                       CHAT_WEBHOOK_URL=self.vendor.url + "/hook")
            res = subprocess.run([sys.executable, script, json.dumps(NAMED)], env=env,
                                 capture_output=True, encoding="utf-8", timeout=60)
        self.assertEqual((res.returncode, res.stdout), (0, "chat: sent to 127.0.0.1 (HTTP 200)\n"), res.stderr)
        self.assertIn("chat: send to chat: POST to 127.0.0.1: HTTP 503 Service Unavailable: busy; retry 1 of 4",
                      res.stderr)
        self.assertEqual(len(self.vendor.seen), 2)
        self.assertEqual(json.loads(self.vendor.seen[1][3]),
                         {"text": "HIGH alert web-down on web (3 \u00d7 SERVER_DOWN)"})

    def test_run_with_call(self):
        self.vendor.reply((503, {}, b"busy"), (429, {"Retry-After": "0"}, b""), (200, {}, b"sent"))
        p = self.policy(RETRY_BASE=0.01)
        err = io.StringIO()
        with redirect_stderr(err):
            status, _, body = p.run("send to chat", lambda: self.call(policy=p))
        self.assertEqual((status, body, len(self.vendor.seen)), (200, b"sent", 3))
        self.assertEqual(len(err.getvalue().splitlines()), 2)
        self.assertIn("HTTP 503 Service Unavailable: busy; retry 1 of 4", err.getvalue())


class HelpersTest(unittest.TestCase):
    def test_check_url(self):
        self.assertEqual(notify.check_url("https://hooks.example.com/T/B/secret", "chat_url"), "hooks.example.com")
        self.assertEqual(notify.check_url("http://127.0.0.1:8080", "chat_url"), "127.0.0.1")
        for bad in ("ftp://h/x", "hooks.example.com/secret", "http:///secret", ""):
            with self.assertRaises(notify.Failure) as cm:
                notify.check_url(bad, "chat_url")
            self.assertEqual(str(cm.exception), "chat_url is not an http(s) URL")

    def test_excerpt(self):
        self.assertEqual(notify.excerpt(b"<html><TITLE>\n 502  Bad\n</TITLE>x</html>"), "502 Bad")
        self.assertEqual(notify.excerpt("a\n  b\tc"), "a b c")
        self.assertEqual(notify.excerpt("x" * 300, 10), "x" * 10 + "...")
        self.assertEqual(notify.excerpt(b"\xff ok"), "\ufffd ok")

    def test_text_and_clip(self):
        self.assertEqual(notify.text(None), "")
        self.assertEqual(notify.text("s"), "s")
        self.assertEqual(notify.text({"b": 1, "a": [2]}), '{"a": [2], "b": 1}')
        self.assertEqual(notify.text(3), "3")
        self.assertEqual(notify.clip("abcdef", 6), "abcdef")
        self.assertEqual(notify.clip("abcdefg", 6), "abcde\u2026")
        self.assertEqual(len(notify.clip({"k": "v" * 100}, 20)), 20)

    def test_when_and_iso(self):
        t = notify.when("1700000000")
        self.assertEqual((t.year, t.utcoffset().total_seconds()), (2023, 0))
        self.assertEqual(notify.iso(1700000000), "2023-11-14 22:13:20 UTC")
        for bad in (None, "soon", float("inf"), 1e20):
            self.assertIsNone(notify.when(bad), bad)
        self.assertEqual(notify.iso("soon"), "soon")

    def test_bounded(self):
        self.assertEqual(notify.bounded("short", 10), "short")
        a, b = notify.bounded("k" * 300 + "a", 255), notify.bounded("k" * 300 + "b", 255)
        self.assertEqual((len(a), len(b)), (255, 255))
        self.assertNotEqual(a, b)
        self.assertTrue(a.startswith("k" * 238 + "~"))


class AlertNameTest(unittest.TestCase):
    def test_split_name(self):
        self.assertEqual(notify.split_name(NAMED["name"]),
                         ("web-down-pool-1-1700000000.123456-1700000000", "web-down-pool-1", 1700000000.123456))
        self.assertEqual(notify.split_name("cfg-obj-1700000000-1700000000-12")[2], 1700000000.0)
        for name in ("", "my alert", "a-b-c-d", "cfg-obj-1.2.3-1700000000-1", "cfg-obj-x-1700000000-1"):
            self.assertIsNone(notify.split_name(name), name)

    def test_alert_key(self):
        raised = vigil.alert(NAMED)
        resolved = vigil.alert(dict(NAMED, reason="resolved", name=NAMED["name"][:-2] + "-17"))
        key = notify.alert_key(raised)
        self.assertEqual(key, "web-down-pool-1-1700000000.123456-1700000000")
        self.assertEqual(notify.alert_key(resolved), key)
        self.assertEqual(notify.alert_key(vigil.alert({"name": "my alert"})), "my alert")
        unnamed = {k: v for k, v in NAMED.items() if k != "name"}
        self.assertEqual(notify.alert_key(vigil.alert(unnamed)), "pool-1:SERVER_DOWN")
        self.assertEqual(notify.alert_key(vigil.alert({"obj_name": "web"})), "web:")
        self.assertEqual(notify.alert_key(vigil.alert({})), "unknown:")

    def test_view(self):
        v = notify.View(vigil.alert(NAMED))
        self.assertEqual((v.config, v.obj, v.level, v.label, v.resolved),
                         ("web-down", "web", "ALERT_HIGH", "HIGH", False))
        self.assertEqual(v.title(), "HIGH alert: web-down on web")
        self.assertEqual(v.summary(), "HIGH alert web-down on web (3 \u00d7 SERVER_DOWN)")
        v = notify.View(vigil.alert(dict(NAMED, reason="resolved", events=[])))
        self.assertEqual(v.title(), "Resolved: web-down on web")
        self.assertEqual(v.summary(), "Alert web-down on web resolved")
        v = notify.View(vigil.alert({"level": 5, "events": [{}, {"event_id": "X"}]}))
        self.assertEqual((v.config, v.obj, v.label), ("alert", "unknown object", "5"))
        self.assertEqual(v.summary(), "5 alert alert on unknown object (1 \u00d7 event, 1 \u00d7 X)")


class MainTest(unittest.TestCase):
    def exit_of(self, fn):
        err = io.StringIO()
        with redirect_stderr(err), self.assertRaises(SystemExit) as cm:
            notify.main("chat", fn)
        return cm.exception.code, err.getvalue()

    def test_main(self):
        self.assertEqual(self.exit_of(lambda: 0), (0, ""))
        self.assertEqual(self.exit_of(lambda: None), (None, ""))

        def fail():
            raise notify.Failure("POST to h: HTTP 400 Bad Request (not retried)")
        self.assertEqual(self.exit_of(fail), (1, "chat: POST to h: HTTP 400 Bad Request (not retried)\n"))
        with self.assertRaises(KeyError):
            notify.main("chat", lambda: {}["x"])

    def test_script(self):
        """A script run as the runner runs it: the SDK on PYTHONPATH, a
        Failure one line on stderr and exit status 1."""
        source = (
            "from vigil import notify\n"
            "SETTINGS = ('CHAT_RETRIES', 'CHAT_RETRY_BASE', 'CHAT_TIME_BUDGET', 'CHAT_HTTP_TIMEOUT')\n"
            "def run():\n"
            "    notify.Policy('chat', SETTINGS)\n"
            "    view = notify.View(notify.alert())\n"
            "    url = notify.secret('chat_webhook_url')\n"
            "    print('chat:', view.summary(), notify.check_url(url, 'chat_webhook_url'))\n"
            "notify.main('chat', run)\n")
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "script.py")
            with open(script, "w") as f:
                f.write(source)
            env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
            env.update(PYTHONPATH=ROOT, PYTHONIOENCODING="utf-8")
            for extra, alert, code, out in (
                    ({"CHAT_WEBHOOK_URL": "https://h/x"}, json.dumps(NAMED), 0,
                     "chat: HIGH alert web-down on web (3 \u00d7 SERVER_DOWN) h\n"),
                    ({"CHAT_WEBHOOK_URL": "https://h/x"}, "{nope", 1, "chat: bad alert: sys.argv[1] is not JSON"),
                    ({}, json.dumps(NAMED), 1, "chat: secret key chat_webhook_url is not set (env CHAT_WEBHOOK_URL)"),
                    ({"CHAT_RETRIES": "many"}, json.dumps(NAMED), 1, "chat: CHAT_RETRIES must be a number")):
                res = subprocess.run([sys.executable, script, alert], env=dict(env, **extra),
                                     capture_output=True, encoding="utf-8", timeout=60)
                self.assertEqual(res.returncode, code, res.stderr)
                if code == 0:
                    self.assertEqual((res.stdout, res.stderr), (out, ""))
                else:
                    self.assertEqual(res.stdout, "")
                    self.assertTrue(res.stderr.startswith(out), res.stderr)
                    self.assertEqual(res.stderr.count("\n"), 1, res.stderr)


if __name__ == "__main__":
    unittest.main()
