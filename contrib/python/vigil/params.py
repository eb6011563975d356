"""vigil.params: a ControlScript's parameters and Secret keys, read from its
environment (standard library only).

`import vigil` does not load this module; a script says
`from vigil import params` (vigil.notify and vigil.vsphere use it and give
the same names). An integration's parameters reach the script as
environment variables, and each key of a Secret it lists as a variable
named after the key. A value that is not what it should be is a Failure
whose one-line message names the variable:

    from vigil.params import Failure, flag, param, seconds

    template = param("VCENTER_TEMPLATE")                # "" when unset or blank
    insecure = flag("VCENTER_INSECURE", "false")        # 1/true/yes/on, 0/false/no/off
    timeout = seconds("CLONE_TIMEOUT", "600")           # 90, 90s, 1.5m, 500ms, 1h
    if not template:
        raise Failure("VCENTER_TEMPLATE is not set")

See contrib/python/README.md.
"""

import os
import re

__all__ = ["Failure", "param", "number", "flag", "seconds", "port", "secret"]


class Failure(Exception):
    """The run failed; str() is the one-line reason. status is the HTTP
    status of the answer that caused it, else None."""

    def __init__(self, why, status=None):
        super().__init__(why)
        self.status = status


def param(name, default=""):
    """The environment variable name, stripped; default when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value if value else default


def number(name, default, lo, hi):
    """The environment variable name as a float in [lo, hi]; default when
    unset or blank. Anything else is a Failure naming the variable."""
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


def flag(name, default):
    """The environment variable name as a bool: 1, true, yes, on or 0,
    false, no, off (any case); default (a string of those) when unset or
    blank. Anything else is a Failure naming the variable."""
    value = param(name, default).lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise Failure("%s must be true or false, got %r" % (name, value))


_UNITS = {"ms": 0.001, None: 1, "s": 1, "m": 60, "h": 3600}


def seconds(name, default):
    """The environment variable name as a duration in seconds (a float): a
    number of seconds, or one with a unit, ms, s, m or h (90s, 10m, 1.5h);
    default (a string of that form) when unset or blank. Anything else is a
    Failure naming the variable."""
    value = param(name, default)
    m = re.fullmatch(r"(\d+(?:\.\d*)?)(ms|s|m|h)?", value)
    if not m:
        raise Failure("%s must be seconds or a duration such as 90s or 10m, got %r" % (name, value))
    return float(m.group(1)) * _UNITS[m.group(2)]


def port(name, default):
    """The environment variable name as a TCP port, an int from 1 to
    65535; default (a string) when unset or blank. Anything else is a
    Failure naming the variable."""
    value = param(name, default)
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise Failure("%s must be a port from 1 to 65535, got %r" % (name, value))
    return int(value)


def secret(key, required=True):
    """The value of the Secret key `key`, which the runner puts in the
    environment upper-cased with every character other than [A-Za-z0-9_]
    made '_' (webhook_url: WEBHOOK_URL). A missing one is a Failure naming
    the key and the variable, unless required is false ("" then). The value
    itself never appears in a message."""
    env = re.sub(r"[^A-Za-z0-9_]", "_", key).upper()
    value = os.environ.get(env, "").strip()
    if not value and required:
        raise Failure("secret key %s is not set (env %s): add it to a Secret listed in the "
                      "ControlScript's secrets" % (key, env))
    return value
