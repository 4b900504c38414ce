"""API keys on the HTTP API. A bot that never had a key (or was opened again with
`hybrid keys open`) is open on loopback; once a key was created, every route but
/healthz and the web UI page needs
`Authorization: Bearer KEY` (the openai SDK's api_key), and changing documents, the
index, adapters or the server's metrics needs a key with the admin scope. A server
listening on any address other than loopback answers no request without a key. Keys
created or revoked while the server runs take effect at the next request."""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from hybrid.errors import HybridError
from hybrid.keys import Scope

Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


class AuthenticationError(HybridError):
    code = "invalid_api_key"


class PermissionDeniedError(HybridError):
    code = "insufficient_scope"


def require(scope: Scope) -> Guard:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        server = connection.app.state.server
        keys = server.keys()
        header = connection.headers.get("authorization", "")
        token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
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

    return guard


CHAT = [require("chat")]
ADMIN = [require("admin")]
