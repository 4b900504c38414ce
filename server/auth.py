"""API keys on the HTTP API. With no active key the server is open (`hybrid serve` then
binds to loopback only); once a key exists, every route but /healthz needs
`Authorization: Bearer KEY` (the openai SDK's api_key), and changing documents, the
index, adapters or the server's metrics needs a key with the admin scope. Keys created
or revoked while the server runs take effect at the next request."""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from hybrid.errors import HybridError
from hybrid.keys import Scope

Guard = Callable[[ASGIConnection, BaseRouteHandler], None]


class AuthenticationError(HybridError):
    code = "invalid_api_key"
    status = 401


class PermissionDeniedError(HybridError):
    code = "insufficient_scope"
    status = 403


def require(scope: Scope) -> Guard:
    def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        keys = connection.app.state.server.keys()
        header = connection.headers.get("authorization", "")
        token = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
        granted = keys.scope_of(token) if token else None
        if granted is None:
            if not keys.any_active():
                return  # no keys at all: the server is open
            raise AuthenticationError(
                "a valid API key is required" if token else "an API key is required",
                hint="send Authorization: Bearer KEY (create one with `hybrid keys create`)",
            )
        if scope == "admin" and granted != "admin":
            raise PermissionDeniedError("this needs an API key with the admin scope")

    return guard


CHAT = [require("chat")]
ADMIN = [require("admin")]
