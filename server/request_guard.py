"""What keeps a web page the operator visits from using a local server: every request's
`Host` must name this server (no DNS rebinding), a request that changes something must
come from the server's own origin (or one in `server.allowed_origins`) when a browser
sends it, and its body must be JSON (multipart where a route says so), which no
cross-site form can send without a CORS preflight that this server never grants."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit

from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, Scope, Send

from hybrid.config import ServerSettings
from hybrid.errors import InvalidInputError
from server.auth import PermissionDeniedError

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"
MULTIPART = "multipart/form-data"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings: ServerSettings, host: str) -> frozenset[str] | None:
    """Host names this server answers to; None: any. A server listening on every
    address answers any name unless `server.allowed_hosts` lists them."""
    named = set(settings.allowed_hosts)
    if "*" in named or (host in WILDCARD_HOSTS and not named):
        return None
    return frozenset(LOOPBACK_NAMES | named | ({host} - WILDCARD_HOSTS))


def request_guard(settings: ServerSettings, host: str) -> Callable[[ASGIApp], ASGIApp]:
    hosts = allowed_hosts(settings, host)
    origins = frozenset(origin.rstrip("/") for origin in settings.allowed_origins)

    def middleware(app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                _check_host(headers.get("host", ""), hosts)
                if scope["method"] in UNSAFE_METHODS:
                    _check_origin(headers, origins)
                    handler = scope.get("route_handler")
                    media_type = handler.opt.get("body_media_type", JSON) if handler else JSON
                    _check_content_type(headers, media_type)
            await app(scope, receive, send)

        return guarded

    return middleware


def _hostname(netloc: str) -> str:
    """`name` of `name:port`, `[::1]:port` or a bare name, lower-cased."""
    return (urlsplit(f"//{netloc}").hostname or "").lower()


def _check_host(host: str, allowed: frozenset[str] | None) -> None:
    if allowed is not None and _hostname(host) not in allowed:
        raise InvalidInputError(
            f"this server does not answer to the host name {host!r}",
            hint="add it to server.allowed_hosts if it really is this server's name",
            param="Host",
        )


def _check_origin(headers: dict[str, str], allowed: frozenset[str]) -> None:
    origin = headers.get("origin")
    if origin is None:
        # Browsers send Origin with every cross-site POST; Sec-Fetch-Site backs it up.
        if headers.get("sec-fetch-site") == "cross-site":
            raise PermissionDeniedError("cross-site requests may not change anything")
        return
    same = urlsplit(origin).netloc.lower() == headers.get("host", "").lower()
    if not same and origin.rstrip("/") not in allowed:
        raise PermissionDeniedError(
            f"requests from the web origin {origin!r} may not change anything here",
            hint="add it to server.allowed_origins if that site is trusted",
            param="Origin",
        )


def _check_content_type(headers: dict[str, str], expected: str) -> None:
    given = headers.get("content-type")
    has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
    if given is None and not has_body:
        return
    media_type = (given or "").split(";")[0].strip().lower()
    if media_type == expected or (expected == JSON and media_type.endswith("+json")):
        return
    raise HTTPException(
        status_code=415, detail=f"send the body as {expected}, not {given or 'untyped data'}"
    )
