"""The ControlScript contract: the alert in sys.argv[1] and the environment.

Nothing here imports more than the interpreter has already loaded; json is
imported when an alert string is parsed.
"""

import os
import sys

from ._errors import AlertError

__all__ = ["Alert", "Event", "alert", "env", "CONTRACT_ENV"]

# The contract's environment variables, without API_TOKEN and VIGIL_API_TOKEN.
CONTRACT_ENV = (
    "USER", "TENANT", "VERSION", "DOCKER_GATEWAY",
    "VIGIL_API_URL", "VIGIL_API_SOCKET", "VIGIL_EXECUTION_ID",
)


class _Record:
    """A JSON object with attribute access to its fields.

    A field of the shape that the record lacks reads as None; any other field
    the record has reads as itself; anything else is an AttributeError.
    raw is the dict itself; rec["x"], rec.get("x") and "x" in rec work too.
    """

    __slots__ = ("raw",)
    _FIELDS = ()
    _WHAT = "record"

    def __init__(self, raw):
        self.raw = raw

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raw = object.__getattribute__(self, "raw")
        if name in raw:
            return raw[name]
        if name in type(self)._FIELDS:
            return None
        raise AttributeError("%s has no field %r" % (self._WHAT, name))

    def __getitem__(self, key):
        return self.raw[key]

    def __contains__(self, key):
        return key in self.raw

    def get(self, key, default=None):
        return self.raw.get(key, default)


class Event(_Record):
    """One event of an alert: event_id, obj_type, obj_name, obj_uuid,
    report_timestamp, event_details (a dict, {} when absent), module, tenant.

    details is what event_details holds under its one key (Avi puts exactly one
    key there, such as "se_hm_pool_details"), or event_details itself when it
    does not have exactly one key; details_key is that key, or None.
    """

    __slots__ = ()
    _FIELDS = ("event_id", "obj_type", "obj_name", "obj_uuid", "report_timestamp",
               "module", "tenant", "details_summary", "event_description")
    _WHAT = "event"

    @property
    def event_details(self):
        d = self.raw.get("event_details")
        return {} if d is None else d

    @property
    def details_key(self):
        d = self.event_details
        if isinstance(d, dict) and len(d) == 1:
            return next(iter(d))
        return None

    @property
    def details(self):
        key = self.details_key
        return self.event_details if key is None else self.event_details[key]

    def __repr__(self):
        return "<vigil.Event %s %s/%s>" % (self.event_id, self.obj_type or "-", self.obj_name or "-")


class Alert(_Record):
    """The alert a ControlScript is run with, in Avi's shape: name, level,
    reason, obj_name, obj_uuid, obj_type, threshold, throttle_count and events
    (a list of Event; [] when absent). event is the first event, or None.
    raw is the parsed JSON.
    """

    __slots__ = ("events",)
    _FIELDS = ("name", "level", "reason", "obj_name", "obj_uuid", "obj_type",
               "threshold", "throttle_count", "metric_info")
    _WHAT = "alert"

    def __init__(self, raw):
        super().__init__(raw)
        evs = raw.get("events")
        if evs is None:
            evs = []
        if not isinstance(evs, list):
            raise AlertError("alert field events must be a list, got %s" % _json_type(evs))
        for i, ev in enumerate(evs):
            if not isinstance(ev, dict):
                raise AlertError("alert field events[%d] must be an object, got %s" % (i, _json_type(ev)))
            d = ev.get("event_details")
            if d is not None and not isinstance(d, dict):
                raise AlertError("alert field events[%d].event_details must be an object, got %s"
                                 % (i, _json_type(d)))
        self.events = [Event(ev) for ev in evs]

    @property
    def event(self):
        return self.events[0] if self.events else None

    def __repr__(self):
        return "<vigil.Alert %r level=%s obj=%s events=%d>" % (
            self.name, self.level, self.obj_name, len(self.events))


def _json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (list, tuple)):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def alert(raw=None):
    """Return the alert this script runs for, as an Alert.

    Without an argument it parses sys.argv[1]; raw may also be a JSON string,
    bytes, a dict or an Alert. A missing sys.argv[1], text that is not JSON or
    JSON that is not an alert raise AlertError.
    """
    what = "the alert"
    if raw is None:
        if len(sys.argv) < 2:
            raise AlertError(
                "no alert: sys.argv[1] is missing (a ControlScript runs as "
                "`python3 script.py '<alert json>'`)")
        raw, what = sys.argv[1], "sys.argv[1]"
    if isinstance(raw, Alert):
        return raw
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as e:
            raise AlertError("%s is not UTF-8: %s" % (what, e)) from None
    if isinstance(raw, str):
        import json
        try:
            raw = json.loads(raw)
        except ValueError as e:
            text = raw.strip()
            shown = repr(text[:40] + ("..." if len(text) > 40 else "")) if text else "empty"
            raise AlertError("%s is not JSON: %s (%s)" % (what, getattr(e, "msg", e), shown)) from None
    if not isinstance(raw, dict):
        raise AlertError("%s must be a JSON object, got %s" % (what, _json_type(raw)))
    return Alert(raw)


def env():
    """The contract's environment, without the tokens: a dict of USER, TENANT,
    VERSION, DOCKER_GATEWAY, VIGIL_API_URL, VIGIL_API_SOCKET and
    VIGIL_EXECUTION_ID, each None when unset.
    """
    return {k: os.environ.get(k) for k in CONTRACT_ENV}


def progress(message, **fields):
    """Print one progress line, flushed at once so that `vigil executions
    logs -f` shows it while the script runs: the UTC time, the message and
    the fields as key=value (sorted), such as

        2026-11-26T05:01:02Z clone started vm=web-1 n=1/2
    """
    import time
    parts = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), str(message)]
    parts += ["%s=%s" % (k, fields[k]) for k in sorted(fields)]
    print(" ".join(parts), flush=True)
