"""The Litestar app: `create_app(bot)` builds it; a lifespan loads the model and the
retriever in the background (GET /healthz says 503 until then) and frees them at
shutdown. Routes live in server/routes/; what they share is `ServerState`, injected as
`server`."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router

from hybrid.bot import Bot
from server.console import STATIC, console_router, template_config
from server.http_errors import EXCEPTION_HANDLERS
from server.metrics import observe_requests
from server.openapi import document_errors
from server.request_guard import request_guard
from server.routes import (
    adapters,
    chat,
    documents,
    feedback,
    files,
    health,
    jobs,
    metrics,
    search,
    web,
)
from server.state import ServerState

MAX_BODY_BYTES = 64 * 1024 * 1024  # uploads of training files; larger bodies get 413


def create_app(bot: Bot, *, host: str = "", state: ServerState | None = None) -> Litestar:
    """The app for `bot`, listening on `host` (default: server.host), which decides the
    host names it answers to and whether it may answer without a key."""
    server = state or ServerState(bot, host)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        loader = threading.Thread(target=server.load, name="load", daemon=True)
        loader.start()
        try:
            yield
        finally:
            loader.join()
            server.close()

    return Litestar(
        state=State({"server": server}),  # for the guards, which get no dependencies
        route_handlers=[
            *adapters.ROUTES,
            *chat.ROUTES,
            *documents.ROUTES,
            *feedback.ROUTES,
            *files.ROUTES,
            *jobs.ROUTES,
            *search.ROUTES,
            *health.ROUTES,
            *metrics.ROUTES,
            *web.ROUTES,
            console_router(),
            # The pages' favicon, the console's stylesheet and script: no secrets, no key.
            create_static_files_router(path="/static", directories=[STATIC]),
        ],
        template_config=template_config(),
        # Counted first, so that refused requests show in the metrics too.
        middleware=[
            observe_requests(server.metrics),
            request_guard(bot.config.server, server.host),
        ],
        dependencies={"server": Provide(lambda: server, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        lifespan=[lifespan],
        on_startup=[document_errors],
        request_max_body_size=MAX_BODY_BYTES,
        # No logging set-up of Litestar's own: it would show every library's INFO lines.
        logging_config=None,
        openapi_config=OpenAPIConfig(
            title=f"hybrid: {bot.config.bot.name}", version="1", path="/schema"
        ),
    )
