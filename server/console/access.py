"""Who may open the console. A bot that is open on loopback (no key ever made) needs no
sign-in; otherwise the operator signs in once with an admin key, kept in an HttpOnly,
SameSite=Strict cookie scoped to /admin, so no script and no other site can use it. A
chat-scope key is refused."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import Request, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.handlers import BaseRouteHandler
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from server.auth import AuthenticationError, PermissionDeniedError, check_access
from server.console.rendering import FORM, FORM_BODY, page
from server.state import ServerState

COOKIE = "hybrid_console"


def console_guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    check_access(connection.app.state.server, connection.cookies.get(COOKIE, ""), "admin")


@dataclass
class SignIn:
    key: str = ""
    next: str = "/admin"


@get("/login", sync_to_thread=False)
def sign_in_page(next: Annotated[str, QueryParameter(max_length=2000)] = "/admin") -> Template:
    return page("login.html.j2", "Sign in", next=_local(next))


@post("/login", sync_to_thread=True, opt=FORM)
def sign_in(
    request: Request,
    server: NamedDependency[ServerState],
    data: Annotated[SignIn, FORM_BODY],
) -> Template | Redirect:
    try:
        check_access(server, data.key.strip(), "admin")
    except (AuthenticationError, PermissionDeniedError) as exc:
        problem = exc.message if data.key.strip() else "enter an admin key"
        status = 403 if isinstance(exc, PermissionDeniedError) else 401
        return page("login.html.j2", "Sign in", next=_local(data.next), problem=problem,
                    status_code=status)  # fmt: skip
    cookie = Cookie(
        key=COOKIE, value=data.key.strip(), path="/admin", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return Redirect(_local(data.next), status_code=303, cookies=[cookie])


@post("/logout", sync_to_thread=False, opt=FORM)
def sign_out() -> Redirect:
    gone = Cookie(key=COOKIE, value="", path="/admin", max_age=0, httponly=True,
                  samesite="strict")  # fmt: skip
    return Redirect("/admin/login", status_code=303, cookies=[gone])


def _local(target: str) -> str:
    """Only a console path: a sign-in link must not send anyone to another site."""
    return target if target.startswith("/admin") and "//" not in target else "/admin"


ROUTES = [sign_in_page, sign_in, sign_out]
