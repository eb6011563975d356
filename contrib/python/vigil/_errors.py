"""The errors the SDK raises. Every one is a VigilError."""

import builtins

__all__ = [
    "VigilError", "AlertError", "APIError", "UnauthorizedError", "ForbiddenError",
    "NotFoundError", "ConflictError", "ConnectionError", "TimeoutError",
]


class VigilError(Exception):
    """The base of every error the SDK raises."""


class AlertError(VigilError, ValueError):
    """The alert (sys.argv[1], or the value given to vigil.alert) is missing or not an alert."""


def _one_line(s):
    return " ".join(str(s).split())


class APIError(VigilError):
    """An error answered by the vigil API: {"error": {code, message, object, field}}.

    status is the HTTP status; code the stable code (docs/api.md), filled from the
    status when the body was not an API error (a proxy's page, say); object names
    "Kind/name" and field the field path when the server gave them; method and
    path name the request.
    """

    def __init__(self, status, code="", message="", object=None, field=None, method=None, path=None):
        super().__init__(status, code, message, object, field)
        self.status = status
        self.code = code or ""
        self.message = message or ""
        self.object = object or None
        self.field = field or None
        self.method = method
        self.path = path

    def __str__(self):
        # One line, like the Go client: "Pool/web: spec.port: must be 1..65535 (invalid_object, HTTP 400)".
        msg = _one_line(self.message)
        parts = []
        if self.object and not msg.startswith(self.object):
            parts.append(self.object + ": ")
        if self.field and not msg.startswith(self.field):
            parts.append(self.field + ": ")
        parts.append(msg or "HTTP %s" % self.status)
        parts.append(" (%s, HTTP %s)" % (self.code, self.status) if self.code else " (HTTP %s)" % self.status)
        return "".join(parts)


class UnauthorizedError(APIError):
    """401: no token, an unknown token or an expired one."""


class ForbiddenError(APIError):
    """403: the token's role does not allow the call."""


class NotFoundError(APIError):
    """404: no such object (or route)."""


class ConflictError(APIError):
    """409: a revision that is no longer current; re-read the object and try again."""


class ConnectionError(VigilError, builtins.ConnectionError):
    """The API could not be reached (or answered garbage at the HTTP level).

    address is the URL or "unix socket <path>"; also a builtin ConnectionError.
    """

    def __init__(self, message, address=None, method=None, path=None, attempts=1):
        super().__init__(message)
        self.address = address
        self.method = method
        self.path = path
        self.attempts = attempts


class TimeoutError(ConnectionError, builtins.TimeoutError):
    """The API did not answer within the client's timeout. Timeouts are not retried."""
