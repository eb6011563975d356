"""A client for vigil's REST API (docs/api.md), over TCP or a unix socket.

json, http.client, urllib.parse and socket are imported on first use, so
that `import vigil` stays cheap; vigil.preload() imports them ahead of time.
"""

import builtins
import os
import time

from ._errors import (
    APIError, ConflictError, ConnectionError, ForbiddenError, NotFoundError,
    TimeoutError, UnauthorizedError, VigilError,
)
from ._version import __version__

__all__ = ["Client", "DEFAULT_SOCKET", "preload"]

# The socket the runner mounts into a sandbox that has no network.
DEFAULT_SOCKET = "/run/vigil/api.sock"

API_PREFIX = "/api/v1"
USER_AGENT = "vigil-python/" + __version__

# Statuses that mean "try again": 503 says the request was not processed, so
# it is retried for every call; 502 and 504 only for calls safe to repeat.
_RETRY_STATUSES = (502, 503, 504)

_STATUS_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 429: "queue_full",
    500: "internal", 502: "bad_gateway", 503: "unavailable", 504: "gateway_timeout",
}

_ERROR_CLASSES = {401: UnauthorizedError, 403: ForbiddenError, 404: NotFoundError, 409: ConflictError}


def preload(ssl=False):
    """Import what a request needs now, not on the first call (for warm
    interpreters). ssl=True also loads ssl, for https URLs."""
    import http.client  # noqa: F401
    import json  # noqa: F401
    import random  # noqa: F401
    import socket  # noqa: F401
    import urllib.parse  # noqa: F401
    if ssl:
        import ssl as _ssl  # noqa: F401
    _unix_connection_class()


_unix_class = None


def _unix_connection_class():
    """http.client.HTTPConnection over a unix stream socket (made once)."""
    global _unix_class
    if _unix_class is None:
        import http.client
        import socket

        class UnixHTTPConnection(http.client.HTTPConnection):
            def __init__(self, path, timeout):
                super().__init__("localhost", timeout=timeout)
                self.unix_path = path

            def connect(self):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.settimeout(self.timeout)
                    s.connect(self.unix_path)
                except BaseException:
                    s.close()
                    raise
                self.sock = s

        _unix_class = UnixHTTPConnection
    return _unix_class


class _Failure(Exception):
    """A transport failure; sent says whether the request may have reached the server."""

    def __init__(self, err, sent):
        super().__init__(err)
        self.err = err
        self.sent = sent


def _quote(s):
    from urllib.parse import quote
    return quote(str(s), safe="")


def _object_path(kind, name):
    if not kind or not name:
        raise ValueError("an object needs a kind and a name, got kind=%r name=%r" % (kind, name))
    return "/objects/%s/%s" % (_quote(kind), _quote(name))


def _revision(obj):
    md = obj.get("metadata") if isinstance(obj, dict) else None
    return md.get("revision") if isinstance(md, dict) else None


def _uuid7():
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    ms = time.time_ns() // 1_000_000
    r = int.from_bytes(os.urandom(10), "big")
    v = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (r >> 62 & 0xFFF) << 64 | 0b10 << 62 | (r & (2**62 - 1))
    h = "%032x" % v
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


class Client:
    """A vigil API client.

    Where it connects, first match wins:
      1. url= or socket= (not both);
      2. $VIGIL_API_SOCKET, when that file exists or $VIGIL_API_URL is unset;
      3. $VIGIL_API_URL, such as "http://172.17.0.1:8480" (a path prefix is
         kept; "/api/v1" is added unless the URL ends with it);
      4. /run/vigil/api.sock, when it exists.
    The token is token=, else $VIGIL_API_TOKEN, else $API_TOKEN; it is sent as
    "Authorization: Bearer ..." and never shown (repr, errors).

    timeout (seconds) bounds connecting and each read; a timeout raises
    vigil.TimeoutError and is not retried. retries is how many times a call is
    repeated, with capped exponential backoff (backoff * 2**n, at most
    max_backoff, with jitter; a 503's Retry-After is honoured up to
    max_backoff), after a connection failure, a 503, or (for calls that are
    safe to repeat) a 502/504 or a connection lost mid-call. Other errors,
    4xx included, are raised at once. A call is safe to repeat unless it
    writes with a revision (or deletes): repeating it after a lost answer
    could report a conflict for a write that succeeded.

    Each call uses a new connection, so a Client may be shared by threads.
    """

    def __init__(self, url=None, token=None, socket=None, timeout=30, retries=3,
                 backoff=0.25, max_backoff=5.0):
        if url and socket:
            raise ValueError("give url or socket, not both")
        if not url and not socket:
            env_url = os.environ.get("VIGIL_API_URL", "").strip()
            env_sock = os.environ.get("VIGIL_API_SOCKET", "").strip()
            if env_sock and (not env_url or os.path.exists(env_sock)):
                socket = env_sock
            elif env_url:
                url = env_url
            elif os.path.exists(DEFAULT_SOCKET):
                socket = DEFAULT_SOCKET
            else:
                raise VigilError(
                    "no vigil API address: set VIGIL_API_URL (or VIGIL_API_SOCKET), "
                    "or pass url= or socket= to vigil.Client")
        if token is None:
            token = os.environ.get("VIGIL_API_TOKEN") or os.environ.get("API_TOKEN") or ""
        token = str(token).strip()
        if any(c < "!" or c > "~" for c in token):
            raise ValueError("the API token has characters an HTTP header cannot carry (it is not shown)")
        self._token = token
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._ssl_context = None
        if socket:
            self.socket, self.url = os.fspath(socket), None
            self._https, self._host, self._port, self._base = False, None, None, API_PREFIX
            self._where = "unix socket " + self.socket
        else:
            self.socket = None
            self._parse_url(str(url))
            self._where = self.url

    def _parse_url(self, url):
        from urllib.parse import urlsplit
        u = url.strip()
        if "://" not in u:
            u = "http://" + u
        p = urlsplit(u)
        scheme = p.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError("API URL %r: the scheme must be http or https" % self._safe_url(p))
        if p.query or p.fragment:
            raise ValueError("API URL %r: a query or fragment is not allowed" % self._safe_url(p))
        try:
            port = p.port
        except ValueError:
            raise ValueError("API URL %r: bad port" % self._safe_url(p)) from None
        if not p.hostname:
            raise ValueError("API URL %r has no host" % self._safe_url(p))
        path = p.path.rstrip("/")
        self._https, self._host, self._port = scheme == "https", p.hostname, port
        self._base = path if path.endswith(API_PREFIX) else path + API_PREFIX
        # Shown in repr and errors: no user:password part.
        self.url = "%s://%s%s" % (scheme, p.netloc.rpartition("@")[2], path)

    @staticmethod
    def _safe_url(p):
        return "%s://%s%s" % (p.scheme, p.netloc.rpartition("@")[2], p.path)

    def __repr__(self):
        where = "socket=%r" % self.socket if self.socket else "url=%r" % self.url
        return "<vigil.Client %s token=%s>" % (where, "<hidden>" if self._token else "None")

    __str__ = __repr__

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Nothing to release (each call has its own connection); for `with`."""

    # -- the API -----------------------------------------------------------

    def whoami(self):
        """The caller's identity: {"name", "role", "expires"}."""
        return self.request("GET", "/whoami")

    def kinds(self):
        """The registered kinds: [{"name", "description"}, ...]."""
        return self.request("GET", "/kinds")["kinds"]

    def get(self, kind, name):
        """One object, {kind, name, spec, metadata}; NotFoundError if there is none."""
        return self.request("GET", _object_path(kind, name))

    def list(self, kind):
        """The objects of a kind, sorted by name."""
        return self.request("GET", "/objects/" + _quote(kind))["items"]

    def put(self, obj, dry_run=False):
        """Create or update one object (PUT /objects/{kind}/{name}) and return
        it as stored. With metadata.revision it writes only if the object is
        still at that revision (0: only if it does not exist), else
        ConflictError."""
        if not isinstance(obj, dict):
            raise TypeError("put takes an object (a dict), got %s" % type(obj).__name__)
        return self.request("PUT", _object_path(obj.get("kind"), obj.get("name")), obj,
                            query={"dry_run": "true"} if dry_run else None,
                            idempotent=_revision(obj) is None)

    def apply(self, objects, dry_run=False):
        """Create or update one object or a list of them, all or nothing, and
        return the list of results ({kind, name, action, revision, object,
        previous}; action is created, updated or unchanged)."""
        if isinstance(objects, (str, bytes)):
            raise TypeError("apply takes an object (a dict) or a list of them, not %s" % type(objects).__name__)
        objs = [objects] if isinstance(objects, dict) else [o for o in objects]
        idempotent = all(_revision(o) is None for o in objs)
        return self.request("POST", "/apply", {"objects": objs, "dry_run": bool(dry_run)},
                            idempotent=idempotent)["results"]

    def delete(self, kind, name, revision=None, missing_ok=False):
        """Delete one object and return its result ({..., "action": "deleted"}).
        With revision, only if unchanged since (else ConflictError). A missing
        object is NotFoundError, or None with missing_ok=True."""
        q = None if revision is None else {"revision": int(revision)}
        try:
            ans = self.request("DELETE", _object_path(kind, name), query=q, idempotent=False)
        except NotFoundError:
            if missing_ok:
                return None
            raise
        results = (ans or {}).get("results") or []
        return results[0] if results else None

    def update(self, kind, name, fn, attempts=5):
        """Read an object, let fn change it, and write it back if unchanged
        meanwhile; on a conflict, read it again and call fn again, up to
        attempts times (then the ConflictError is raised).

        fn(obj) changes obj (usually obj["spec"]) in place, or returns the
        object to write. When fn leaves the object as it was, nothing is
        written and the object is returned; otherwise the stored object is.
        """
        import json
        for attempt in range(max(1, attempts)):
            obj = self.get(kind, name)
            rev = _revision(obj)
            before = json.dumps(obj, sort_keys=True)
            out = fn(obj)
            if out is not None:
                if not isinstance(out, dict):
                    raise TypeError("update: fn must change the object in place or return a dict, "
                                    "got %s" % type(out).__name__)
                obj = out
            if json.dumps(obj, sort_keys=True) == before:
                return obj
            md = obj.get("metadata")
            if not isinstance(md, dict):
                md = obj["metadata"] = {}
            if rev is None:
                raise VigilError("update %s/%s: the object read has no metadata.revision" % (kind, name))
            md["revision"] = rev
            obj.setdefault("kind", kind)
            obj.setdefault("name", name)
            try:
                return self.request("PUT", _object_path(kind, name), obj, idempotent=False)
            except ConflictError:
                if attempt + 1 >= max(1, attempts):
                    raise
                self._sleep(attempt)
        raise AssertionError("unreachable")

    # -- pool servers -----------------------------------------------------

    def add_pool_servers(self, pool, servers, attempts=5):
        """Add servers to a Pool and return the stored Pool.

        servers is a list of dicts in the Pool's shape ({"ip", "port",
        "hostname", "enabled", "ratio"}). A server already in the pool with
        the same ip and port is left as it is, so a repeated call adds
        nothing. The write is conditional and retried on a conflict (see
        update)."""
        servers = [_server(s, "servers[%d]" % i) for i, s in enumerate(servers)]

        def add(obj):
            have = _servers_of(obj)
            known = {(s.get("ip"), s.get("port")) for s in have}
            for s in servers:
                if (s.get("ip"), s.get("port")) not in known:
                    have.append(dict(s))
                    known.add((s.get("ip"), s.get("port")))
        return self.update("Pool", pool, add, attempts=attempts)

    def remove_pool_servers(self, pool, servers=(), attempts=5):
        """Remove servers from a Pool and return the removed server dicts
        ([] when none matched).

        Each entry of servers picks pool servers by "hostname", or by "ip"
        (and "port" when given); see set_pool_servers_enabled. The write is
        conditional and retried on a conflict."""
        want = [_server(s, "servers[%d]" % i) for i, s in enumerate(servers)]
        removed = []

        def remove(obj):
            del removed[:]
            have = _servers_of(obj)
            keep = []
            for s in have:
                (removed if _matches(s, want) else keep).append(s)
            have[:] = keep
        self.update("Pool", pool, remove, attempts=attempts)
        return removed

    def set_pool_servers_enabled(self, pool, servers, enabled, attempts=5):
        """Enable or disable servers of a Pool (disabling drains a server:
        it gets no new requests) and return the stored Pool.

        Each entry of servers picks pool servers: by "hostname" when it has
        one, else by "ip" and, when given, "port". "ip" may be a string or
        Avi's {"addr": ...}."""
        want = [_server(s, "servers[%d]" % i) for i, s in enumerate(servers)]

        def change(obj):
            for s in _servers_of(obj):
                if _matches(s, want):
                    s["enabled"] = bool(enabled)
        return self.update("Pool", pool, change, attempts=attempts)

    def publish(self, event_id, obj_type, obj_name, details=None, id=None, **fields):
        """Publish an event as a bare record and return {"id", "seq",
        "duplicate"}. details is the event_details; fields may add obj_uuid,
        module, details_summary, event_description or report_timestamp. id is
        the dedup key; without one a UUIDv7 is made here, so that a retried
        call is stored once."""
        record = {"id": id or _uuid7(), "event_id": event_id, "obj_type": obj_type, "obj_name": obj_name}
        if details is not None:
            record["event_details"] = details
        record.update(fields)
        return self.request("POST", "/events", record, idempotent=True)

    # -- transport ---------------------------------------------------------

    def request(self, method, path, body=None, query=None, idempotent=None):
        """Send one request to path (under /api/v1, such as "/events") and
        return the decoded JSON answer (None for an empty one). body is
        encoded as JSON; query is a dict (None values are left out).
        idempotent defaults to True for GET and HEAD. Errors are raised as
        APIError (and its subclasses), ConnectionError or TimeoutError."""
        import json
        method = method.upper()
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        full = self._base + (path if path.startswith("/") else "/" + path)
        shown = full
        if query:
            from urllib.parse import urlencode
            q = {k: ("true" if v is True else "false" if v is False else v)
                 for k, v in query.items() if v is not None}
            if q:
                full += "?" + urlencode(q, doseq=True)
        data = None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._token:
            headers["Authorization"] = "Bearer " + self._token

        attempt = 0
        while True:
            try:
                status, retry_after, raw = self._roundtrip(method, full, data, headers)
            except _Failure as f:
                e = f.err
                if isinstance(e, builtins.TimeoutError):
                    raise TimeoutError(
                        "the vigil API at %s did not answer %s %s within %ss"
                        % (self._where, method, shown, self.timeout),
                        self._where, method, shown, attempt + 1) from e
                if attempt < self.retries and (not f.sent or idempotent):
                    self._sleep(attempt)
                    attempt += 1
                    continue
                raise ConnectionError(
                    "cannot reach the vigil API at %s: %s %s: %s%s"
                    % (self._where, method, shown, _reason(e),
                       " (%d attempts)" % (attempt + 1) if attempt else ""),
                    self._where, method, shown, attempt + 1) from e
            if status in _RETRY_STATUSES and attempt < self.retries and (status == 503 or idempotent):
                self._sleep(attempt, retry_after)
                attempt += 1
                continue
            break
        if status >= 400:
            raise self._error(status, raw, method, shown)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise VigilError("%s %s at %s: the answer (HTTP %d) is not JSON"
                             % (method, shown, self._where, status)) from None

    def _connection(self):
        if self.socket:
            return _unix_connection_class()(self.socket, self.timeout)
        import http.client
        if self._https:
            if self._ssl_context is None:
                import ssl
                self._ssl_context = ssl.create_default_context()
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=self._ssl_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _roundtrip(self, method, target, data, headers):
        import http.client
        conn = self._connection()
        try:
            try:
                conn.connect()
            except OSError as e:
                raise _Failure(e, sent=False) from None
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
                return resp.status, resp.getheader("Retry-After"), raw
            except (OSError, http.client.HTTPException) as e:
                raise _Failure(e, sent=True) from None
        finally:
            conn.close()

    def _sleep(self, attempt, retry_after=None):
        import random
        d = min(self.max_backoff, self.backoff * (2 ** attempt)) * (0.5 + random.random() / 2)
        if retry_after:
            try:
                d = max(d, min(self.max_backoff, float(retry_after)))
            except ValueError:
                pass
        time.sleep(d)

    def _error(self, status, raw, method, path):
        import json
        code = message = obj = field = None
        try:
            doc = json.loads(raw)
            err = doc.get("error") if isinstance(doc, dict) else None
            if isinstance(err, dict):
                code, message = err.get("code"), err.get("message")
                obj, field = err.get("object"), err.get("field")
        except ValueError:
            pass
        if not code and not message:
            # Not an API error: a proxy's page, say. Keep a short first line.
            text = raw.decode("utf-8", "replace").strip()
            message = text.splitlines()[0][:200] if text else ""
        if not code:
            code = _STATUS_CODES.get(status, "http_%d" % status)
        message = str(message or "")
        if self._token and self._token in message:
            message = message.replace(self._token, "<token>")
        cls = _ERROR_CLASSES.get(status, APIError)
        return cls(status, code, message, obj, field, method, path)


def _server(s, what):
    """A server given by a caller, in the Pool's shape: Avi's {"ip":
    {"addr": ...}} is accepted for ip."""
    if not isinstance(s, dict):
        raise TypeError("%s must be a dict, got %s" % (what, type(s).__name__))
    s = dict(s)
    ip = s.get("ip")
    if isinstance(ip, dict):
        s["ip"] = ip.get("addr")
    if not s.get("ip") and not s.get("hostname"):
        raise ValueError("%s has neither ip nor hostname" % what)
    return s


def _servers_of(obj):
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    servers = spec.get("servers")
    if not isinstance(servers, list):
        servers = spec["servers"] = []
    return servers


def _matches(server, want):
    for w in want:
        if w.get("hostname"):
            if server.get("hostname") == w["hostname"]:
                return True
        elif server.get("ip") == w.get("ip") and (w.get("port") in (None, 0) or server.get("port") == w["port"]):
            return True
    return False


def _reason(e):
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
