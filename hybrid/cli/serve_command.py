from __future__ import annotations

import json
import logging
import os
from typing import Annotated

import typer

from hybrid.bot import Bot
from hybrid.cli.context import current_bot
from hybrid.cli.output import quiet_model_libraries, stderr
from hybrid.errors import InvalidInputError
from hybrid.hardware import limit_threads
from hybrid.keys import KeyStore


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: server.host).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: server.port).")] = None,
) -> None:
    """Serve the bot over HTTP: OpenAI-compatible chat (plain and streaming) with
    citations, the model list, the bot's own routes, the web UI and the admin console.
    Stops with Ctrl-C."""
    bot = current_bot(ctx)
    host = host or bot.config.server.host
    port = port or bot.config.server.port
    quiet_model_libraries()
    import uvicorn

    from server.app import create_app
    from server.request_guard import is_loopback

    if _vllm_shares_this_machine(bot):
        # vLLM's CPU workers keep every core busy; the server's own model work (embedding
        # the questions) on several threads would wait for the busiest core each time.
        limit_threads(1)
    with KeyStore(bot.database) as keys:
        usable = keys.any_active()
    if not is_loopback(host) and not usable:
        # It would answer nothing: off loopback, every request needs a key.
        raise InvalidInputError(
            f"refusing to listen on {host} without an API key: off loopback, every "
            "request needs one",
            hint="create one with `hybrid keys create`, or listen on 127.0.0.1",
            param="--host",
        )
    from training import AdapterRegistry

    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        active = [r.name for r in registry.list() if r.status == "active"]
    model = active[0] if active else bot.config.models.base
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    request = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "How do I return an item?"}]}
    )
    stderr.print(
        f"Serving [bold]{bot.config.bot.name}[/] at [bold]{url}[/] (web UI there, admin "
        f"console {url}/admin, OpenAI base URL {url}/v1, API docs {url}/schema); loading "
        "the model…"
    )
    stderr.print(  # the JSON's brackets are not rich markup
        f"Try: curl {url}/v1/chat/completions -H 'Content-Type: application/json' -d '{request}'",
        markup=False,
    )
    # Our lines (ready, one per request, failures) with a time stamp; libraries say only
    # what goes wrong.
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
    logging.getLogger("hybrid").setLevel(logging.INFO)
    uvicorn.run(
        create_app(bot, host=host), host=host, port=port, log_level="warning", log_config=None
    )


def _vllm_shares_this_machine(bot: Bot) -> bool:
    """Whether vLLM generates on this machine, and no thread count was chosen."""
    from urllib.parse import urlsplit

    from server.request_guard import is_loopback

    config = bot.config
    if (
        config.models.generator != "vllm"
        or config.models.threads
        or "OMP_NUM_THREADS" in os.environ
    ):
        return False
    return all(is_loopback(urlsplit(url).hostname or "") for url in config.vllm.urls)
