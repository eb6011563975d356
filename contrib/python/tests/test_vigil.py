"""Tests of the vigil SDK against a fake API (fakevigil.py) over TCP and a unix socket.

Run: cd contrib/python && /usr/bin/python3 -m unittest discover -s tests -v
"""

import builtins
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import fakevigil  # noqa: E402
import vigil  # noqa: E402
from fakevigil import TOKEN  # noqa: E402

# Avi's documented example (reference/avi.md §2.2).
AVI_ALERT = {
    "name": "Dos_Attack-virtualservice-0e6b-1461261716-1", "level": "ALERT_HIGH",
    "reason": "threshold_exceeded", "obj_name": "l4vs", "obj_uuid": "virtualservice-0e6b",
    "threshold": 1, "throttle_count": 0,
    "events": [{
        "event_id": "DOS_ATTACK", "obj_uuid": "virtualservice-0e6b", "obj_name": "l4vs",
        "report_timestamp": 1461261716,
        "event_details": {"dos_attack_event_details": {
            "attack": "SYN_FLOOD", "attack_count": 2150.0,
            "ipgroup_uuids": ["ipaddrgroup-1"], "src_ips": ["10.10.90.67"]}},
    }],
}

SERVER_DOWN_ALERT = {
    "name": "pool-web-down-1764090000-1", "level": "ALERT_HIGH", "reason": "threshold_exceeded",
    "obj_name": "web", "obj_uuid": "pool-0001", "threshold": 1, "throttle_count": 0,
    "events": [{
        "event_id": "SERVER_DOWN", "obj_name": "web", "obj_uuid": "pool-0001",
        "report_timestamp": 1764090000,
        "event_details": {"se_hm_pool_details": {
            "pool": "web", "virtual_service": "shop", "percent_servers_up": 50,
            "server": {"ip": {"addr": "10.0.0.5", "type": "V4"}, "port": 8080,
                       "failure_code": "CONNECTION_REFUSED"}}},
    }],
}

CONTRACT_VARS = ("API_TOKEN", "VIGIL_API_TOKEN", "VIGIL_API_URL", "VIGIL_API_SOCKET", "USER", "TENANT",
                 "VERSION", "DOCKER_GATEWAY", "VIGIL_EXECUTION_ID")

FAKE = None


def setUpModule():
    global FAKE
    FAKE = fakevigil.FakeVigil()


def tearDownModule():
    FAKE.close()


def pool(name="web", **spec):
    spec.setdefault("servers", [{"ip": "10.0.0.5", "port": 8080, "enabled": True},
                                {"ip": "10.0.0.6", "port": 8080, "enabled": True}])
    return {"kind": "Pool", "name": name, "spec": spec}


class Base(unittest.TestCase):
    def setUp(self):
        FAKE.reset()
        clean = {k: v for k, v in os.environ.items() if k not in CONTRACT_VARS}
        patcher = mock.patch.dict(os.environ, clean, clear=True)
        patcher.start()
        self.addCleanup(patcher.stop)
        self.release = threading.Event()  # lets hooks that stall finish
        self.addCleanup(self.release.set)

    def client(self, **kw):
        kw.setdefault("token", TOKEN)
        if "socket" not in kw:
            kw.setdefault("url", FAKE.url)
        kw.setdefault("backoff", 0.001)
        kw.setdefault("max_backoff", 0.01)
        kw.setdefault("timeout", 5)
        return vigil.Client(**kw)

    def hook(self, fn):
        with FAKE.state.lock:
            FAKE.state.hooks.append(fn)

    def fail_n(self, status, n, path=None, method=None, code="unavailable", headers=None):
        """Answer the next n matching requests with status, then let them through."""
        left = [n]

        def h(handler, m, p):
            if (path and p != path) or (method and m != method) or left[0] == 0:
                return False
            left[0] -= 1
            handler.send_error_json(status, code, "injected %d" % status, headers=headers)
            return True
        self.hook(h)

    def assertOneLine(self, s):
        self.assertNotIn("\n", s)
        self.assertTrue(s.strip())


class AlertTest(Base):
    def test_parses_argv(self):
        with mock.patch.object(sys, "argv", ["script.py", json.dumps(AVI_ALERT)]):
            a = vigil.alert()
        self.assertEqual(a.name, AVI_ALERT["name"])
        self.assertEqual((a.level, a.reason, a.obj_name, a.obj_uuid), ("ALERT_HIGH", "threshold_exceeded",
                                                                      "l4vs", "virtualservice-0e6b"))
        self.assertEqual((a.threshold, a.throttle_count), (1, 0))
        self.assertEqual(a.raw, AVI_ALERT)
        self.assertEqual(a["level"], "ALERT_HIGH")
        self.assertIn("events", a)
        self.assertIsNone(a.metric_info)  # a field of the shape this alert lacks
        with self.assertRaises(AttributeError):
            a.no_such_field
        self.assertEqual(len(a.events), 1)
        ev = a.events[0]
        self.assertIs(a.event, ev)
        self.assertEqual((ev.event_id, ev.obj_name, ev.obj_uuid, ev.report_timestamp),
                         ("DOS_ATTACK", "l4vs", "virtualservice-0e6b", 1461261716))
        self.assertEqual(ev.details_key, "dos_attack_event_details")
        self.assertEqual(ev.details["src_ips"], ["10.10.90.67"])
        self.assertEqual(ev.event_details, AVI_ALERT["events"][0]["event_details"])
        self.assertIs(ev.raw, a.raw["events"][0])
        self.assertIn("DOS_ATTACK", repr(ev))
        self.assertIn("l4vs", repr(a))

    def test_accepts_string_bytes_dict_and_alert(self):
        text = json.dumps(SERVER_DOWN_ALERT)
        for raw in (text, text.encode(), SERVER_DOWN_ALERT):
            a = vigil.alert(raw)
            self.assertEqual(a.event.details["server"]["ip"]["addr"], "10.0.0.5")
        self.assertIs(vigil.alert(a), a)

    def test_missing_argv(self):
        with mock.patch.object(sys, "argv", ["script.py"]):
            with self.assertRaises(vigil.AlertError) as cm:
                vigil.alert()
        self.assertIn("sys.argv[1] is missing", str(cm.exception))
        self.assertIsInstance(cm.exception, ValueError)
        self.assertIsInstance(cm.exception, vigil.VigilError)

    def test_bad_json(self):
        for bad in ("{not json", "", "   "):
            with mock.patch.object(sys, "argv", ["script.py", bad]):
                with self.assertRaises(vigil.AlertError) as cm:
                    vigil.alert()
            self.assertIn("sys.argv[1] is not JSON", str(cm.exception))
            self.assertOneLine(str(cm.exception))

    def test_not_an_alert(self):
        for raw, want in (("[1, 2]", "must be a JSON object, got an array"),
                          ('{"events": {}}', "events must be a list"),
                          ('{"events": [3]}', "events[0] must be an object"),
                          ('{"events": [{"event_details": "x"}]}', "events[0].event_details must be an object")):
            with self.assertRaises(vigil.AlertError) as cm:
                vigil.alert(raw)
            self.assertIn(want, str(cm.exception))

    def test_sparse_alert(self):
        a = vigil.alert('{"name": "scheduled", "events": [{"event_id": "X"}]}')
        self.assertIsNone(a.level)
        self.assertEqual(a.event.event_details, {})
        self.assertEqual(a.event.details, {})
        self.assertIsNone(a.event.details_key)
        self.assertEqual(vigil.alert("{}").events, [])
        self.assertIsNone(vigil.alert("{}").event)


class EnvTest(Base):
    def test_env_has_no_tokens(self):
        os.environ.update({"API_TOKEN": TOKEN, "VIGIL_API_TOKEN": TOKEN, "USER": "admin", "TENANT": "admin",
                           "VERSION": "22.1.6", "DOCKER_GATEWAY": "172.17.0.1",
                           "VIGIL_EXECUTION_ID": "exec-1", "VIGIL_API_URL": FAKE.url})
        e = vigil.env()
        self.assertEqual(e["USER"], "admin")
        self.assertEqual(e["DOCKER_GATEWAY"], "172.17.0.1")
        self.assertEqual(e["VIGIL_EXECUTION_ID"], "exec-1")
        self.assertIsNone(e["VIGIL_API_SOCKET"])
        self.assertNotIn("API_TOKEN", e)
        self.assertNotIn("VIGIL_API_TOKEN", e)
        self.assertNotIn(TOKEN, repr(e))


class ConfigTest(Base):
    def test_url_and_api_token_from_env(self):
        os.environ.update({"VIGIL_API_URL": FAKE.url, "API_TOKEN": TOKEN})
        c = vigil.Client(backoff=0.001)
        self.assertEqual(c.url, FAKE.url)
        self.assertIsNone(c.socket)
        self.assertEqual(c.whoami()["name"], "script-1")

    def test_vigil_api_token_wins(self):
        os.environ.update({"VIGIL_API_URL": FAKE.url, "API_TOKEN": "vgl_other", "VIGIL_API_TOKEN": TOKEN})
        self.assertEqual(vigil.Client().whoami()["role"], "script")

    def test_socket_from_env(self):
        os.environ.update({"VIGIL_API_SOCKET": FAKE.socket_path, "VIGIL_API_URL": "http://127.0.0.1:1",
                           "API_TOKEN": TOKEN})
        c = vigil.Client()
        self.assertEqual(c.socket, FAKE.socket_path)
        self.assertEqual(c.whoami()["name"], "script-1")

    def test_missing_env_socket_falls_back_to_url(self):
        os.environ.update({"VIGIL_API_SOCKET": "/nonexistent/api.sock", "VIGIL_API_URL": FAKE.url})
        self.assertEqual(vigil.Client().url, FAKE.url)

    def test_default_socket(self):
        with mock.patch("vigil._client.DEFAULT_SOCKET", FAKE.socket_path):
            c = vigil.Client(token=TOKEN)
        self.assertEqual(c.socket, FAKE.socket_path)
        self.assertEqual(c.whoami()["name"], "script-1")

    def test_no_address(self):
        with mock.patch("vigil._client.DEFAULT_SOCKET", "/nonexistent/api.sock"):
            with self.assertRaises(vigil.VigilError) as cm:
                vigil.Client()
        self.assertIn("VIGIL_API_URL", str(cm.exception))

    def test_url_forms(self):
        port = FAKE.url.rsplit(":", 1)[1]
        for url in (FAKE.url + "/", FAKE.url + "/api/v1", FAKE.url + "/api/v1/", "127.0.0.1:" + port):
            c = self.client(url=url)
            self.assertEqual(c.whoami()["name"], "script-1", url)
        self.assertTrue(all(r[1] == "/api/v1/whoami" for r in FAKE.requests()))
        c = self.client(url="http://user:secret@127.0.0.1:%s/prefix" % port)
        self.assertEqual(c.url, "http://127.0.0.1:%s/prefix" % port)
        self.assertEqual(c._base, "/prefix/api/v1")
        self.assertNotIn("secret", repr(c))

    def test_bad_config(self):
        with self.assertRaises(ValueError):
            vigil.Client(url=FAKE.url, socket=FAKE.socket_path)
        with self.assertRaises(ValueError):
            vigil.Client(url="ftp://x")
        with self.assertRaises(ValueError):
            vigil.Client(url="http://x/?a=b")
        with self.assertRaises(ValueError) as cm:
            vigil.Client(url=FAKE.url, token=TOKEN + "\nX-Evil: 1")
        self.assertNotIn(TOKEN, str(cm.exception))


class APITest(Base):
    def test_auth_header_and_user_agent(self):
        c = self.client()
        self.assertEqual(c.whoami(), {"name": "script-1", "role": "script", "expires": None})
        (_, path, headers, _), = FAKE.requests()
        self.assertEqual(path, "/api/v1/whoami")
        self.assertEqual(headers["Authorization"], "Bearer " + TOKEN)
        self.assertTrue(headers["User-Agent"].startswith("vigil-python/"))
        self.assertEqual(headers["Accept"], "application/json")

    def test_401(self):
        for c in (self.client(token="vgl_wrong"), self.client(token="")):
            with self.assertRaises(vigil.UnauthorizedError) as cm:
                c.whoami()
            e = cm.exception
            self.assertIsInstance(e, vigil.APIError)
            self.assertEqual((e.status, e.code), (401, "unauthorized"))
            self.assertOneLine(str(e))
            self.assertIn("(unauthorized, HTTP 401)", str(e))
        self.assertEqual(len(FAKE.requests()), 2)  # not retried
        self.assertNotIn("Authorization", FAKE.requests()[1][2])

    def test_404(self):
        with self.assertRaises(vigil.NotFoundError) as cm:
            self.client().get("Pool", "nope")
        e = cm.exception
        self.assertEqual((e.status, e.code, e.object), (404, "not_found", "Pool/nope"))
        self.assertEqual((e.method, e.path), ("GET", "/api/v1/objects/Pool/nope"))
        self.assertEqual(str(e), "Pool/nope: no such object (not_found, HTTP 404)")
        self.assertEqual(len(FAKE.requests()), 1)

    def test_put_get_list(self):
        c = self.client()
        stored = c.put(pool())
        self.assertEqual(stored["metadata"]["updated_by"], "script-1")
        rev = stored["metadata"]["revision"]
        self.assertEqual(c.get("pool", "web"), stored)
        self.assertEqual([o["name"] for o in c.list("Pool")], ["web"])
        self.assertEqual(c.kinds()[0]["name"], "ControlScript")
        # dry run: nothing stored
        dry = c.put(pool("web", servers=[]), dry_run=True)
        self.assertEqual(dry["spec"]["servers"], [])
        self.assertEqual(c.get("Pool", "web")["metadata"]["revision"], rev)
        self.assertIn("dry_run=true", FAKE.requests("PUT")[-1][1])
        # a current revision writes
        obj = c.get("Pool", "web")
        obj["spec"]["lb"] = "round_robin"
        self.assertGreater(c.put(obj)["metadata"]["revision"], rev)
        with self.assertRaises(ValueError):
            c.put({"kind": "Pool", "spec": {}})

    def test_409_on_stale_revision(self):
        c = self.client()
        old = c.put(pool())
        FAKE.state.bump("Pool", "web", lb="least_conn")
        old["spec"]["lb"] = "round_robin"
        with self.assertRaises(vigil.ConflictError) as cm:
            c.put(old)
        e = cm.exception
        self.assertEqual((e.status, e.code, e.object), (409, "conflict", "Pool/web"))
        self.assertIn("is stale", str(e))
        self.assertOneLine(str(e))
        self.assertEqual(len(FAKE.requests("PUT")), 2)  # not retried

    def test_apply(self):
        c = self.client()
        (r,) = c.apply(pool("a"))
        self.assertEqual((r["kind"], r["name"], r["action"]), ("Pool", "a", "created"))
        rs = c.apply([pool("a"), pool("b")])
        self.assertEqual([x["action"] for x in rs], ["unchanged", "created"])
        rs = c.apply([pool("c")], dry_run=True)
        self.assertEqual(rs[0]["action"], "created")
        self.assertEqual([o["name"] for o in c.list("Pool")], ["a", "b"])
        body = json.loads(FAKE.requests("POST", "/api/v1/apply")[-1][3])
        self.assertEqual(body, {"objects": [pool("c")], "dry_run": True})
        # all or nothing: one stale revision refuses the batch
        stale = dict(pool("a", lb="x"), metadata={"revision": 0})
        with self.assertRaises(vigil.ConflictError):
            c.apply([pool("d"), stale])
        self.assertEqual([o["name"] for o in c.list("Pool")], ["a", "b"])

    def test_delete(self):
        c = self.client()
        rev = c.put(pool())["metadata"]["revision"]
        with self.assertRaises(vigil.ConflictError):
            c.delete("Pool", "web", revision=rev + 100)
        r = c.delete("Pool", "web", revision=rev)
        self.assertEqual((r["action"], r["previous"]["name"]), ("deleted", "web"))
        self.assertIn("revision=%d" % rev, FAKE.requests("DELETE")[-1][1])
        with self.assertRaises(vigil.NotFoundError):
            c.delete("Pool", "web")
        self.assertIsNone(c.delete("Pool", "web", missing_ok=True))

    def test_update_retries_a_conflict(self):
        c = self.client()
        c.put(pool())
        bumped = []

        def other_writer(handler, method, path):
            # Between our read and our write, someone else writes the pool, once.
            if method == "PUT" and not bumped:
                bumped.append(FAKE.state.bump("Pool", "web", weight=2))
            return False
        self.hook(other_writer)
        calls = []

        def disable(obj):
            calls.append(obj["metadata"]["revision"])
            for s in obj["spec"]["servers"]:
                if s["ip"] == "10.0.0.5":
                    s["enabled"] = False

        stored = c.update("Pool", "web", disable)
        self.assertEqual(len(calls), 2)
        self.assertEqual(calls[1], bumped[0]["metadata"]["revision"])
        self.assertEqual(stored["spec"]["weight"], 2)  # the other writer's change is kept
        self.assertFalse(stored["spec"]["servers"][0]["enabled"])
        self.assertGreater(stored["metadata"]["revision"], bumped[0]["metadata"]["revision"])
        puts = FAKE.requests("PUT")
        self.assertEqual(len(puts), 3)  # the seed, the conflict, the write
        self.assertEqual(json.loads(puts[1][3])["metadata"]["revision"], calls[0])
        self.assertEqual(json.loads(puts[2][3])["metadata"]["revision"], calls[1])

    def test_update_gives_up(self):
        c = self.client()
        c.put(pool())

        def always(handler, method, path):
            if method == "PUT":
                FAKE.state.bump("Pool", "web", weight=time.monotonic())
            return False
        self.hook(always)
        with self.assertRaises(vigil.ConflictError):
            c.update("Pool", "web", lambda o: o["spec"].update(lb="x"), attempts=3)
        self.assertEqual(len(FAKE.requests("PUT")), 1 + 3)

    def test_update_without_change_does_not_write(self):
        c = self.client()
        c.put(pool())
        obj = c.update("Pool", "web", lambda o: None)
        self.assertEqual(obj["name"], "web")
        self.assertEqual(len(FAKE.requests("PUT")), 1)
        # fn may return a new object instead
        stored = c.update("Pool", "web", lambda o: {"spec": dict(o["spec"], lb="x"),
                                                    "metadata": {"revision": 12345}})
        self.assertEqual(stored["spec"]["lb"], "x")
        with self.assertRaises(TypeError):
            c.update("Pool", "web", lambda o: True)
        with self.assertRaises(vigil.NotFoundError):
            c.update("Pool", "nope", lambda o: None)

    def test_add_pool_servers_once(self):
        c = self.client()
        c.put(pool())
        new = [{"ip": {"addr": "10.0.0.7", "type": "V4"}, "port": 8080, "hostname": "web-as-1"}]
        stored = c.add_pool_servers("web", new)
        self.assertEqual([s["ip"] for s in stored["spec"]["servers"]], ["10.0.0.5", "10.0.0.6", "10.0.0.7"])
        self.assertEqual(stored["spec"]["servers"][2]["hostname"], "web-as-1")
        puts = len(FAKE.requests("PUT"))
        again = c.add_pool_servers("web", new)  # already there: nothing is written
        self.assertEqual(len(FAKE.requests("PUT")), puts)
        self.assertEqual(len(again["spec"]["servers"]), 3)
        with self.assertRaises(ValueError):
            c.add_pool_servers("web", [{"port": 80}])
        with self.assertRaises(TypeError):
            c.add_pool_servers("web", ["10.0.0.8"])

    def test_add_pool_servers_keeps_a_concurrent_change(self):
        c = self.client()
        c.put(pool())
        done = []

        def other_writer(handler, method, path):
            if method == "PUT" and not done:
                # Someone adds a server between our read and our write.
                done.append(FAKE.state.bump("Pool", "web", servers=[
                    {"ip": "10.0.0.5", "port": 8080}, {"ip": "10.0.0.6", "port": 8080},
                    {"ip": "10.0.0.9", "port": 8080}]))
            return False
        self.hook(other_writer)
        stored = c.add_pool_servers("web", [{"ip": "10.0.0.7", "port": 8080}])
        self.assertEqual([s["ip"] for s in stored["spec"]["servers"]],
                         ["10.0.0.5", "10.0.0.6", "10.0.0.9", "10.0.0.7"])

    def test_drain_and_remove_pool_servers(self):
        c = self.client()
        c.put(pool(servers=[{"ip": "10.0.0.5", "port": 8080}, {"ip": "10.0.0.6", "port": 8080, "hostname": "web-as-1"},
                            {"ip": "10.0.0.6", "port": 9090}]))
        stored = c.set_pool_servers_enabled("web", [{"hostname": "web-as-1"}], False)
        self.assertEqual([s.get("enabled") for s in stored["spec"]["servers"]], [None, False, None])
        stored = c.set_pool_servers_enabled("web", [{"ip": "10.0.0.6"}], False)  # every port
        self.assertEqual([s.get("enabled") for s in stored["spec"]["servers"]], [None, False, False])
        removed = c.remove_pool_servers("web", [{"ip": {"addr": "10.0.0.6"}, "port": 9090}])
        self.assertEqual(removed, [{"ip": "10.0.0.6", "port": 9090, "enabled": False}])
        removed = c.remove_pool_servers("web", [{"hostname": "web-as-1"}])
        self.assertEqual([s["hostname"] for s in removed], ["web-as-1"])
        self.assertEqual(c.remove_pool_servers("web", [{"hostname": "web-as-1"}]), [])
        self.assertEqual([s["ip"] for s in c.get("Pool", "web")["spec"]["servers"]], ["10.0.0.5"])

    def test_progress_line(self):
        import io
        from contextlib import redirect_stdout
        out = io.StringIO()
        with redirect_stdout(out):
            vigil.progress("clone started", vm="web-1", n="1/2")
        self.assertRegex(out.getvalue(), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ clone started n=1/2 vm=web-1\n$")

    def test_publish(self):
        c = self.client()
        ans = c.publish("SERVER_DISABLED", "pool", "web", {"server": "10.0.0.5"}, obj_uuid="pool-1")
        self.assertEqual((ans["seq"], ans["duplicate"]), (1, False))
        self.assertRegex(ans["id"], r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        rec = json.loads(FAKE.requests("POST", "/api/v1/events")[0][3])
        self.assertEqual(rec, {"id": ans["id"], "event_id": "SERVER_DISABLED", "obj_type": "pool",
                               "obj_name": "web", "event_details": {"server": "10.0.0.5"}, "obj_uuid": "pool-1"})
        a1 = c.publish("CUSTOM", "pool", "web", id="my-key-1")
        a2 = c.publish("CUSTOM", "pool", "web", id="my-key-1")
        self.assertEqual((a1["id"], a1["duplicate"], a2["duplicate"], a2["seq"]), ("my-key-1", False, True, a1["seq"]))
        with self.assertRaises(vigil.APIError) as cm:
            c.publish("CUSTOM", "pool", "web", colour="red")
        self.assertEqual((cm.exception.status, cm.exception.code, cm.exception.field), (400, "invalid_event", "colour"))

    def test_publish_retry_keeps_the_id(self):
        self.fail_n(503, 1, path="/api/v1/events")
        ans = self.client().publish("CUSTOM", "pool", "web")
        ids = {json.loads(r[3])["id"] for r in FAKE.requests("POST", "/api/v1/events")}
        self.assertEqual(ids, {ans["id"]})

    def test_retries_503_then_succeeds(self):
        self.fail_n(503, 2)
        self.assertEqual(self.client(retries=3).whoami()["name"], "script-1")
        self.assertEqual(len(FAKE.requests()), 3)

    def test_retries_run_out(self):
        self.fail_n(503, 100)
        with self.assertRaises(vigil.APIError) as cm:
            self.client(retries=2).whoami()
        self.assertEqual((cm.exception.status, cm.exception.code), (503, "unavailable"))
        self.assertEqual(len(FAKE.requests()), 3)

    def test_retry_after_is_capped(self):
        self.fail_n(503, 1, headers={"Retry-After": "3600"})
        t = time.monotonic()
        self.client(max_backoff=0.05).whoami()
        self.assertLess(time.monotonic() - t, 2)

    def test_no_retry_on_4xx(self):
        for status, code in ((400, "bad_request"), (403, "forbidden"), (409, "conflict"), (429, "queue_full")):
            FAKE.reset()
            self.fail_n(status, 1, code=code)
            with self.assertRaises(vigil.APIError) as cm:
                self.client(retries=3).whoami()
            self.assertEqual((cm.exception.status, cm.exception.code), (status, code))
            self.assertEqual(len(FAKE.requests()), 1, status)
        self.assertIsInstance(cm.exception, vigil.APIError)

    def test_502_retried_only_when_safe(self):
        c = self.client()
        obj = c.put(pool())
        FAKE.forget()
        self.fail_n(502, 1, code="bad_gateway")
        c.get("Pool", "web")  # safe: retried
        self.assertEqual(len(FAKE.requests()), 2)
        FAKE.forget()
        self.fail_n(502, 1, code="bad_gateway")
        with self.assertRaises(vigil.APIError) as cm:
            c.put(obj)  # carries a revision: not repeated
        self.assertEqual(cm.exception.status, 502)
        self.assertEqual(len(FAKE.requests()), 1)

    def test_error_that_is_not_json(self):
        def html(handler, method, path):
            handler.send_text(502, "<html>Bad Gateway\n<p>nginx</p></html>")
            return True
        self.hook(html)
        with self.assertRaises(vigil.APIError) as cm:
            self.client(retries=0).whoami()
        e = cm.exception
        self.assertEqual((e.status, e.code, e.message), (502, "bad_gateway", "<html>Bad Gateway"))
        self.assertOneLine(str(e))

    def test_timeout(self):
        def stall(handler, method, path):
            self.release.wait(5)
            return False
        self.hook(stall)
        c = self.client(timeout=0.2, retries=3)
        t = time.monotonic()
        with self.assertRaises(vigil.TimeoutError) as cm:
            c.whoami()
        self.assertLess(time.monotonic() - t, 2)
        e = cm.exception
        self.assertIsInstance(e, vigil.ConnectionError)
        self.assertIsInstance(e, builtins.TimeoutError)
        self.assertIn(FAKE.url, str(e))
        self.assertIn("within 0.2s", str(e))
        self.assertEqual(len(FAKE.requests()), 1)  # not retried

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = "http://127.0.0.1:%d" % port
        with self.assertRaises(vigil.ConnectionError) as cm:
            self.client(url=url, retries=2).whoami()
        e = cm.exception
        self.assertIsInstance(e, builtins.ConnectionError)
        self.assertEqual((e.address, e.attempts), (url, 3))
        self.assertIn("cannot reach the vigil API at " + url, str(e))
        self.assertIn("(3 attempts)", str(e))
        self.assertOneLine(str(e))

    def test_connection_lost_retried_when_safe(self):
        def hang_up(handler, method, path):
            if len(FAKE.requests()) == 1:
                handler.close_connection = True
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_RDWR)
                return True
            return False
        self.hook(hang_up)
        self.assertEqual(self.client().whoami()["name"], "script-1")
        self.assertEqual(len(FAKE.requests()), 2)

    def test_unix_socket(self):
        c = self.client(socket=FAKE.socket_path)
        self.assertEqual(c.whoami()["name"], "script-1")
        c.put(pool())
        c.update("Pool", "web", lambda o: o["spec"].update(lb="x"))
        self.assertEqual(c.get("Pool", "web")["spec"]["lb"], "x")
        self.assertEqual(c.publish("CUSTOM", "pool", "web")["seq"], 1)
        self.assertEqual(FAKE.requests()[0][2]["Authorization"], "Bearer " + TOKEN)
        self.assertIn("socket='%s'" % FAKE.socket_path, repr(c))

    def test_missing_socket(self):
        path = os.path.join(FAKE.dir, "missing.sock")
        with self.assertRaises(vigil.ConnectionError) as cm:
            self.client(socket=path, retries=1).whoami()
        self.assertIn("unix socket " + path, str(cm.exception))
        self.assertIn("No such file or directory", str(cm.exception))

    def test_token_never_shown(self):
        c = self.client()
        for s in (repr(c), str(c)):
            self.assertNotIn(TOKEN, s)
            self.assertIn("token=<hidden>", s)
        self.assertIn("token=None", repr(self.client(token="")))

        def echo(handler, method, path):  # a careless server that echoes the header
            handler.send_error_json(400, "bad_request", "bad header " + handler.headers["Authorization"])
            return True
        self.hook(echo)
        with self.assertRaises(vigil.APIError) as cm:
            c.whoami()
        self.assertNotIn(TOKEN, str(cm.exception))
        self.assertNotIn(TOKEN, repr(cm.exception))
        self.assertIn("Bearer <token>", str(cm.exception))
        with self.assertRaises(vigil.ConnectionError) as cm:
            self.client(url="http://127.0.0.1:1", retries=0).whoami()
        self.assertNotIn(TOKEN, str(cm.exception))

    def test_request(self):
        c = self.client()
        self.assertEqual(c.request("GET", "whoami")["name"], "script-1")
        with self.assertRaises(vigil.NotFoundError):
            c.request("GET", "/nope", query={"a": 1, "b": None, "c": True})
        self.assertEqual(FAKE.requests()[-1][1], "/api/v1/nope?a=1&c=true")


class ScriptTest(Base):
    """The examples, run the way the runner runs a ControlScript."""

    def run_script(self, name, env, alert=SERVER_DOWN_ALERT):
        full = dict(os.environ, **env)
        full.pop("PYTHONPATH", None)
        full.update(env)
        return subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), json.dumps(alert)],
                              env=full, capture_output=True, text=True, timeout=60)

    def check_disabled(self, res):
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("disabled 10.0.0.5 in pool web", res.stdout)
        servers = FAKE.state.objects[("Pool", "web")]["spec"]["servers"]
        self.assertEqual([s["enabled"] for s in servers], [False, True])
        (ev,) = [e["record"] for e in FAKE.state.events.values()]
        self.assertEqual((ev["event_id"], ev["obj_name"]), ("SERVER_DISABLED", "web"))
        self.assertEqual(ev["event_details"]["server"], "10.0.0.5")

    def test_sdk_example(self):
        self.client().put(pool())
        res = self.run_script("disable_server.py", {"PYTHONPATH": ROOT, "VIGIL_API_URL": FAKE.url, "API_TOKEN": TOKEN})
        self.check_disabled(res)
        self.assertNotIn(TOKEN, res.stdout + res.stderr)

    def test_sdk_example_over_the_socket(self):
        self.client().put(pool())
        res = self.run_script("disable_server.py", {"PYTHONPATH": ROOT, "VIGIL_API_SOCKET": FAKE.socket_path,
                                                    "VIGIL_API_TOKEN": TOKEN})
        self.check_disabled(res)

    def test_sdk_example_error_is_one_line(self):
        self.client().put(pool())
        res = self.run_script("disable_server.py", {"PYTHONPATH": ROOT, "VIGIL_API_URL": FAKE.url,
                                                    "API_TOKEN": "vgl_wrong"})
        self.assertEqual(res.returncode, 1)
        self.assertEqual(res.stderr.strip(),
                         "disable 10.0.0.5 in web: a valid bearer token is required (unauthorized, HTTP 401)")

    def test_avi_style_example(self):
        self.client().put(pool())
        bumped = []

        def other_writer(handler, method, path):
            if method == "PUT" and not bumped:
                bumped.append(FAKE.state.bump("Pool", "web", weight=2))
            return False
        self.hook(other_writer)
        res = self.run_script("avi_style.py", {"VIGIL_API_URL": FAKE.url, "API_TOKEN": TOKEN})
        self.check_disabled(res)
        self.assertEqual(len(FAKE.requests("PUT")), 3)  # seed, conflict, write

    def test_readme_shows_the_examples(self):
        with open(os.path.join(ROOT, "README.md")) as f:
            readme = f.read()
        for name in ("disable_server.py", "avi_style.py"):
            with open(os.path.join(ROOT, "examples", name)) as f:
                self.assertIn("```python\n" + f.read() + "```", readme, "README.md does not show examples/" + name)


class ImportTest(unittest.TestCase):
    def test_import_is_cheap(self):
        code = ("import sys; before = set(sys.modules); import vigil; "
                "print(' '.join(sorted(set(sys.modules) - before)))")
        res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=ROOT),
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        loaded = res.stdout.split()
        self.assertEqual([m for m in loaded if m != "vigil" and not m.startswith("vigil.")], [],
                         "import vigil loaded more than vigil itself")
        self.assertNotIn("vigil.notify", loaded, "import vigil loaded vigil.notify")
        vigil.preload()
        self.assertIn("http.client", sys.modules)


if __name__ == "__main__":
    unittest.main()
