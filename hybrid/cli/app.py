"""The command tree, global options and the one place errors become messages."""

from __future__ import annotations

import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperOption

from hybrid.cli import (
    adapters_command,
    ask_command,
    data_command,
    eval_command,
    index_command,
    init_command,
    keys_command,
    retrain_command,
    search_command,
    serve_command,
    train_command,
    vllm_command,
)
from hybrid.cli.output import stderr
from hybrid.errors import BotNotFoundError, HybridError

# typer 0.29 labels on/off flags `<bool>` in --help, as if they took a value.
_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = lambda self, ctx: None if self.is_flag else _display_type(self, ctx)  # type: ignore[method-assign]

app = typer.Typer(
    name="hybrid",
    help="Build, index, train and serve domain assistants (LoRA style adapter + retrieval).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"hybrid {version('hybrid')}")
        raise typer.Exit()


@app.callback()
def options(
    ctx: typer.Context,
    bot_dir: Annotated[
        Path | None,
        typer.Option("-C", help="Run as if started in this folder (the bot is found from there)."),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    if bot_dir is not None:
        # Like `git -C`: relative paths in the command's arguments start there too.
        if not bot_dir.is_dir():
            raise BotNotFoundError(f"{bot_dir} is not a folder")
        os.chdir(bot_dir)
        bot_dir = Path.cwd()
    ctx.obj = bot_dir


app.command("init")(init_command.init)
app.command("ask")(ask_command.ask)
app.command("search")(search_command.search)
app.add_typer(index_command.app, name="index")
app.add_typer(data_command.app, name="data")
app.command("train")(train_command.train)
app.add_typer(adapters_command.app, name="adapters")
app.command("eval")(eval_command.evaluate)
app.command("retrain")(retrain_command.retrain)
app.command("serve")(serve_command.serve)
app.add_typer(keys_command.app, name="keys")
app.add_typer(vllm_command.app, name="vllm")


def main() -> None:
    """Entry point. Usage errors, --help and Ctrl-C are handled by typer (exit 2, 0, 1);
    a HybridError becomes one clean message (exit 1); anything else is a bug and keeps
    its traceback."""
    try:
        app()
    except HybridError as exc:
        stderr.print(f"[bold red]error:[/] {exc}")
        sys.exit(1)
