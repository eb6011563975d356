"""vigil: the Python SDK for ControlScripts (standard library only).

A ControlScript runs as `python3 script.py '<alert json>'` with the
contract's environment (API_TOKEN, USER, TENANT, VERSION, DOCKER_GATEWAY,
VIGIL_API_URL, VIGIL_API_TOKEN, VIGIL_API_SOCKET, VIGIL_EXECUTION_ID):

    import vigil

    a = vigil.alert()                 # sys.argv[1], parsed
    api = vigil.Client()              # address and token from the environment
    api.update("Pool", a.obj_name, lambda p: p["spec"].update(enabled=False))
    api.publish("POOL_DISABLED", "pool", a.obj_name, {"reason": a.reason})

Importing vigil loads nothing beyond the interpreter's own start-up modules;
json and http.client are loaded on first use (vigil.preload() loads them now).
See contrib/python/README.md.
"""

from ._version import __version__
from ._errors import (
    APIError, AlertError, ConflictError, ConnectionError, ForbiddenError,
    NotFoundError, TimeoutError, UnauthorizedError, VigilError,
)
from ._contract import CONTRACT_ENV, Alert, Event, alert, env, progress
from ._client import DEFAULT_SOCKET, Client, preload

__all__ = [
    "__version__",
    "alert", "env", "progress", "Alert", "Event", "CONTRACT_ENV",
    "Client", "DEFAULT_SOCKET", "preload",
    "VigilError", "AlertError", "APIError", "UnauthorizedError", "ForbiddenError",
    "NotFoundError", "ConflictError", "ConnectionError", "TimeoutError",
]
