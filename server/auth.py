"""API keys on the HTTP API. A bot that never had a key (or was opened again with
`hybrid keys open`) is open on loopback; once a key was created, every route but
/healthz and the web UI page needs
`Authorization: Bearer KEY` (the openai SDK's api_key), and changing documents, the
index, adapters or the server's metrics needs a key with the admin scope. A server
listening on any address other than loopback answers no request without a key. Keys
created or revoked while the server runs take effect at the next request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from hybrid.errors import HybridError
from hybrid.keys import Scope

if TYPE_CHECKING:  # server.state imports this module (through request_guard)
    from server.state import ServerState

Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


class AuthenticationError(HybridError):
    code = "invalid_api_key"


class PermissionDeniedError(HybridError):
    code = "insufficient_scope"


def require(scope: Scope) -> Guard:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        header = connection.headers.get("authorization", "")
        token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        check_access(connection.app.state.server, token, scope)

    return guard


def check_access(server: ServerState, token: str, scope: Scope) -> None:
    """Whether `token` (an API key, or "" for none) may do what needs `scope`."""
    keys = server.keys()
    granted = keys.scope_of(token) if token else None
    if granted is None:
        if server.loopback_only and not keys.closed():
            return  # an open bot, reachable from this machine only
        raise AuthenticationError(
            "a valid API key is required" if token else "an API key is required",
            hint="send Authorization: Bearer KEY (create one with `hybrid keys create`)",
        )
    if scope == "admin" and granted != "admin":
        raise PermissionDeniedError("this needs an API key with the admin scope")


CHAT = [require("chat")]
ADMIN = [require("admin")]
