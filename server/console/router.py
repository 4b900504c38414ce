"""The console's routes under /admin, behind the sign-in (server/console/access.py).
Errors come back as pages, with the status and message the API would give (the same
mapping): not signed in sends the browser to the sign-in page; a server fault shows its
incident id, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, Router
from litestar.response import Redirect

from server.auth import AuthenticationError
from server.console import access, adapters, documents, jobs, overview, review
from server.console.rendering import page
from server.http_errors import EXCEPTION_HANDLERS

ApiHandler = Callable[[Request, Any], Response]


def console_router() -> Router:
    signed_in = Router(
        path="/",
        route_handlers=[
            *overview.ROUTES,
            *review.ROUTES,
            *adapters.ROUTES,
            *jobs.ROUTES,
            *documents.ROUTES,
        ],
        guards=[access.console_guard],
    )
    return Router(
        path="/admin",
        route_handlers=[signed_in, *access.ROUTES],
        exception_handlers={kind: _as_page(api) for kind, api in EXCEPTION_HANDLERS.items()},
        include_in_schema=False,
    )


def _as_page(api: ApiHandler) -> ApiHandler:
    def handler(request: Request, exc: Any) -> Response:
        if isinstance(exc, AuthenticationError):
            return Redirect(f"/admin/login?next={quote(request.url.path)}", status_code=303)
        response = api(request, exc)
        error = response.content.error
        return page("problem.html.j2", "Problem", status_code=response.status_code,
                    message=error.message, param=error.param)  # fmt: skip

    return handler
