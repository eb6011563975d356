"""A fake vigil API for the SDK's tests: just enough of docs/api.md.

It serves objects (GET, list, PUT with revision checks, DELETE), apply,
events (POST, with dedup by id) and whoami, behind bearer tokens, on
127.0.0.1:0 (ThreadingHTTPServer) or on a unix socket. Tests steer it with
hooks: hook(handler, method, path) runs before routing and returns True when
it has answered the request itself.
"""

import json
import os
import socketserver
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "vgl_" + "T" * 43

KINDS = {"pool": "Pool", "secret": "Secret", "controlscript": "ControlScript", "virtualservice": "VirtualService"}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {TOKEN: {"name": "script-1", "role": "script", "expires": None}}
        self.objects = {}  # (Kind, name) -> object
        self.rev = 0
        self.events = {}  # id -> answer
        self.seq = 0
        self.requests = []  # (method, path with query, headers dict, body bytes)
        self.hooks = []

    def next_rev(self):
        self.rev += 1
        return self.rev

    def store(self, kind, name, spec, user):
        old = self.objects.get((kind, name))
        rev = self.next_rev()
        obj = {
            "kind": kind, "name": name, "spec": spec,
            "metadata": {
                "uuid": (old or {}).get("metadata", {}).get("uuid") or "%s-%08d" % (kind.lower(), rev),
                "tenant": "admin", "revision": rev,
                "created": (old or {}).get("metadata", {}).get("created") or "2025-01-01T00:00:00Z",
                "updated": "2025-01-01T00:00:%02dZ" % (rev % 60), "updated_by": user,
            },
        }
        self.objects[(kind, name)] = obj
        return obj, old

    def bump(self, kind, name, **spec_changes):
        """Another writer changes the object: a new revision."""
        with self.lock:
            obj = self.objects[(kind, name)]
            spec = dict(obj["spec"], **spec_changes)
            return self.store(kind, name, spec, "someone-else")[0]


class APIError(Exception):
    def __init__(self, status, code, message, obj=None, field=None):
        super().__init__(message)
        self.status, self.code, self.message, self.obj, self.field = status, code, message, obj, field


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakevigil/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def address_string(self):
        return "unix" if not self.client_address else str(self.client_address[0])

    @property
    def state(self):
        return self.server.state

    def send_json(self, status, doc, headers=None):
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status, code, message, obj=None, field=None, headers=None):
        err = {"code": code, "message": message}
        if obj:
            err["object"] = obj
        if field:
            err["field"] = field
        self.send_json(status, {"error": err}, headers)

    def send_text(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.dispatch("GET")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        n = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(n) if n else b""
        u = urlsplit(self.path)
        self.route_path, self.query = u.path, {k: v[-1] for k, v in parse_qs(u.query).items()}
        with self.state.lock:
            self.state.requests.append((method, self.path, dict(self.headers), self.body))
            hooks = list(self.state.hooks)
        for hook in hooks:
            if hook(self, method, self.route_path):
                return
        try:
            self.authenticate()
            status, doc = self.route(method, self.route_path)
            self.send_json(status, doc)
        except APIError as e:
            self.send_error_json(e.status, e.code, e.message, e.obj, e.field)

    def authenticate(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or auth[7:] not in self.state.tokens:
            raise APIError(401, "unauthorized", "a valid bearer token is required")
        self.identity = self.state.tokens[auth[7:]]

    def json_body(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise APIError(400, "bad_request", "malformed JSON: %s" % e) from None

    def kind(self, name):
        k = KINDS.get(name.lower())
        if not k:
            raise APIError(400, "unknown_kind", "unknown kind %r" % name, field="kind")
        return k

    def route(self, method, path):
        parts = [unquote(p) for p in path.split("/")[1:]]
        if parts[:2] != ["api", "v1"]:
            raise APIError(404, "not_found", "no such route")
        parts = parts[2:]
        st = self.state
        if parts == ["whoami"] and method == "GET":
            return 200, self.identity
        if parts == ["kinds"] and method == "GET":
            return 200, {"kinds": [{"name": k, "description": "a " + k} for k in sorted(KINDS.values())]}
        if parts == ["apply"] and method == "POST":
            return self.apply(self.json_body())
        if parts == ["events"] and method == "POST":
            rec = self.json_body()
            if not isinstance(rec, dict) or not rec.get("event_id"):
                raise APIError(400, "invalid_event", "is required", field="event_id")
            extra = set(rec) - {"id", "event_id", "obj_type", "obj_name", "obj_uuid", "module",
                                "tenant", "report_timestamp", "event_details", "details_summary",
                                "event_description"}
            if extra:
                raise APIError(400, "invalid_event", "not a field", field=sorted(extra)[0])
            with st.lock:
                eid = rec.get("id") or "generated-%d" % (st.seq + 1)
                if eid in st.events:
                    return 201, dict(st.events[eid], duplicate=True)
                st.seq += 1
                ans = {"id": eid, "seq": st.seq, "duplicate": False}
                st.events[eid] = dict(ans, record=rec)
                return 201, ans
        if parts and parts[0] == "objects" and len(parts) in (2, 3):
            kind = self.kind(parts[1])
            if len(parts) == 2 and method == "GET":
                with st.lock:
                    items = [o for (k, _), o in sorted(st.objects.items()) if k == kind]
                return 200, {"items": items}
            name = parts[2] if len(parts) == 3 else None
            if name is None:
                raise APIError(405, "method_not_allowed", "method not allowed")
            ref = "%s/%s" % (kind, name)
            if method == "GET":
                with st.lock:
                    obj = st.objects.get((kind, name))
                if obj is None:
                    raise APIError(404, "not_found", "no such object", obj=ref)
                return 200, obj
            if method == "PUT":
                obj = self.json_body()
                if obj.get("name") not in (None, name):
                    raise APIError(400, "invalid_object", "is %r but the path names %r" % (obj["name"], name),
                                   obj=ref, field="name")
                obj = dict(obj, kind=kind, name=name)
                results = self.write([obj], self.query.get("dry_run") == "true")
                r = results[0]
                return (201 if r["action"] == "created" and self.query.get("dry_run") != "true" else 200), r["object"]
            if method == "DELETE":
                with st.lock:
                    cur = st.objects.get((kind, name))
                    if cur is None:
                        raise APIError(404, "not_found", "no such object", obj=ref)
                    want = self.query.get("revision")
                    if want is not None and int(want) != cur["metadata"]["revision"]:
                        raise APIError(409, "conflict", "%s: revision %s is stale (current %d)"
                                       % (ref, want, cur["metadata"]["revision"]), obj=ref)
                    del st.objects[(kind, name)]
                return 200, {"results": [{"kind": kind, "name": name, "action": "deleted",
                                          "revision": cur["metadata"]["revision"], "object": None,
                                          "previous": cur}]}
        raise APIError(404, "not_found", "no such route")

    def apply(self, req):
        if not isinstance(req, dict) or set(req) - {"objects", "dry_run"}:
            raise APIError(400, "bad_request", "unknown field in the request")
        objs = req.get("objects") or []
        for o in objs:
            o["kind"] = self.kind(o.get("kind") or "")
        return 200, {"results": self.write(objs, bool(req.get("dry_run")))}

    def write(self, objs, dry_run):
        st = self.state
        with st.lock:
            for o in objs:  # all or nothing: check every revision first
                ref = "%s/%s" % (o["kind"], o.get("name"))
                if not isinstance(o.get("spec"), dict):
                    raise APIError(400, "invalid_object", "is required", obj=ref, field="spec")
                want = (o.get("metadata") or {}).get("revision")
                cur = st.objects.get((o["kind"], o["name"]))
                have = cur["metadata"]["revision"] if cur else 0
                if want is not None and want != have:
                    raise APIError(409, "conflict", "%s: revision %d is stale (current %d)" % (ref, want, have),
                                   obj=ref)
            results = []
            for o in objs:
                cur = st.objects.get((o["kind"], o["name"]))
                if cur is not None and cur["spec"] == o["spec"]:
                    results.append({"kind": o["kind"], "name": o["name"], "action": "unchanged",
                                    "revision": cur["metadata"]["revision"], "object": cur, "previous": cur})
                    continue
                if dry_run:
                    new = dict(o, metadata={"revision": (cur or {}).get("metadata", {}).get("revision", 0)})
                    old = cur
                else:
                    new, old = st.store(o["kind"], o["name"], o["spec"], self.identity["name"])
                results.append({"kind": o["kind"], "name": o["name"],
                                "action": "updated" if cur else "created",
                                "revision": new["metadata"]["revision"], "object": new, "previous": old})
            return results


class TCPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a test that gave up on an answer closes its end; that is fine


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class FakeVigil:
    """One state served over TCP (url) and a unix socket (socket_path)."""

    def __init__(self):
        self.state = State()
        self.tcp = TCPServer(("127.0.0.1", 0), Handler)
        self.tcp.state = self.state
        host, port = self.tcp.server_address[:2]
        self.url = "http://%s:%d" % (host, port)
        self.dir = tempfile.mkdtemp(prefix="fakevigil-")
        self.socket_path = os.path.join(self.dir, "api.sock")
        self.unix = UnixServer(self.socket_path, Handler)
        self.unix.state = self.state
        self.threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                        for s in (self.tcp, self.unix)]
        for t in self.threads:
            t.start()

    def close(self):
        for s in (self.tcp, self.unix):
            s.shutdown()
            s.server_close()
        for t in self.threads:
            t.join(5)
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        os.rmdir(self.dir)

    def reset(self):
        """Forget everything: objects, events, requests and hooks."""
        st = self.state
        with st.lock:
            st.objects.clear()
            st.events.clear()
            st.seq = 0
        self.forget()

    def forget(self):
        """Forget the requests seen and the hooks, keeping objects and events."""
        st = self.state
        with st.lock:
            st.requests.clear()
            st.hooks.clear()

    def requests(self, method=None, path=None):
        with self.state.lock:
            return [r for r in self.state.requests
                    if (method is None or r[0] == method) and (path is None or r[1].split("?")[0] == path)]
