"""Where ``serve`` listens, and listening there with uvicorn.

Loopback is the default. Any other address makes the user's documents reachable from other
machines, so it needs a token; the server refuses to start without one instead of warning.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp

from assistant.errors import UsageError

MIN_TOKEN_CHARS = 16
SHUTDOWN_GRACE_S = 5
"""How long Ctrl-C waits for answers in progress before they are stopped."""


def is_loopback(host: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``; a name other than localhost is not assumed to be."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse an address other machines can reach without a token, and a guessable token."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise UsageError(
            f"the token is too short ({len(token)} characters); use at least {MIN_TOKEN_CHARS}, "
            "e.g. from: python -c 'import secrets; print(secrets.token_urlsafe())'"
        )
    if token is None and not is_loopback(host):
        raise UsageError(
            f"listening on {host} lets other machines read your documents, so it needs a token: "
            "set [serve] token or MINICPM_ASSISTANT_SERVE__TOKEN (or --token), or listen on "
            "127.0.0.1"
        )


def serve(app: ASGIApp, host: str, port: int, on_ready: Callable[[str], None]) -> None:
    """Listen on ``host``:``port`` (0: a free port) and serve ``app`` until Ctrl-C.

    The socket is bound before uvicorn starts, so a port in use is one clear error and
    ``on_ready`` gets the real address (with port 0 too); connections made meanwhile wait.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    with listener:
        bound_port = listener.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{bound_port}/v1")
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        )
        uvicorn.Server(config).run(sockets=[listener])
