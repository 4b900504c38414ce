"""`hybrid vllm command`."""

from __future__ import annotations

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json

app = typer.Typer(help="Serve the bot's generation from vLLM.", no_args_is_help=True)


@app.command()
def command(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Print the line that starts a vLLM server for this bot at [vllm] url (one line per
    replica when it lists several): the base model under its hybrid name, LoRA on, the
    active and candidate adapter versions preloaded as NAME@VERSION. Run it in vLLM's own
    virtualenv, then set [models] generator = "vllm"; hybrid loads later versions into
    every replica by itself."""
    from server.vllm_command import vllm_command

    bot = current_bot(ctx)
    lines = {url: vllm_command(bot, url) for url in bot.config.vllm.urls}
    if as_json:
        echo_json(
            [
                {"url": url, "argv": line.argv, "env": line.env, "api_key_env": line.key_from}
                for url, line in lines.items()
            ]
        )
    else:
        for line in lines.values():
            typer.echo(line.shell())
