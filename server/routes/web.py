"""GET /: the web UI, one static page (server/web/chat.html) that chats with the bot
through the server's own OpenAI-compatible routes: it streams answers, lists their
sources and sends feedback. It holds no data, so it needs no key; the routes it calls
do, and the page asks for one."""

from __future__ import annotations

import functools
import html
from pathlib import Path

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.enums import MediaType

from server.state import ServerState

PAGE = Path(__file__).resolve().parent.parent / "web" / "chat.html"


@get("/", sync_to_thread=False, include_in_schema=False)
def web_ui(server: NamedDependency[ServerState]) -> Response[str]:
    return Response(_page(server.bot.config.bot.name), media_type=MediaType.HTML)


@functools.cache
def _page(bot_name: str) -> str:
    return PAGE.read_text(encoding="utf-8").replace("{{bot_name}}", html.escape(bot_name))


ROUTES = [web_ui]
