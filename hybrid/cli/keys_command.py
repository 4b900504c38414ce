"""`hybrid keys create | list | revoke | open`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, stderr
from hybrid.keys import KeyStore

app = typer.Typer(help="API keys for `hybrid serve` (stored hashed).", no_args_is_help=True)


def _store(ctx: typer.Context) -> KeyStore:
    return KeyStore(current_bot(ctx).database)


@app.command()
def create(
    ctx: typer.Context,
    scope: Annotated[
        Literal["chat", "admin"],
        typer.Option(help="chat: ask, search, rate; admin: also documents, index, adapters."),
    ] = "chat",
    name: Annotated[str, typer.Option(help="A note to tell keys apart.")] = "",
    as_json: JsonFlag = False,
) -> None:
    """Create a key and print it (the only time it is shown). Once a bot has a key, its
    server answers only requests that carry one."""
    with _store(ctx) as store:
        key, secret = store.create(scope, name)
    if as_json:
        echo_json({**key.__dict__, "key": secret})
        return
    typer.echo(secret)
    stderr.print(f"[dim]key {key.id} ({key.scope}) created; it is not shown again[/]")


@app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every key: id, scope, name, its first characters, created, revoked."""
    with _store(ctx) as store:
        keys = store.list()
        closed = store.closed()
    if as_json:
        echo_json(keys)
        return
    if not closed:
        typer.echo("No key is needed: the server answers anyone on loopback.")
    elif not any(key.revoked_at is None for key in keys):
        typer.echo("Closed: every key is revoked, so the server refuses every request.")
    for key in keys:
        created = dt.datetime.fromtimestamp(key.created_at).strftime("%Y-%m-%d %H:%M")
        state = "revoked" if key.revoked_at else "active"
        typer.echo(f"{key.id:>4}  {key.scope:<5}  {state:<7}  {key.shown}  {created}  {key.name}")


@app.command()
def revoke(
    ctx: typer.Context, key_id: Annotated[int, typer.Argument(help="The key's id.")]
) -> None:
    """Revoke a key; a running server refuses it from the next request on."""
    with _store(ctx) as store:
        key = store.revoke(key_id)
        last = not store.any_active()
    typer.echo(f"Revoked key {key.id} ({key.shown}).")
    if last:
        stderr.print(
            "[yellow]That was the last active key: the server now refuses every request."
            "[/] Create a key, or run `hybrid keys open` to serve loopback without keys."
        )


@app.command("open")
def open_keyless(ctx: typer.Context) -> None:
    """Let requests without a key in again, once every key is revoked. Only on loopback:
    a server on any other address always needs a key."""
    with _store(ctx) as store:
        store.open()
    typer.echo("Opened: the server answers requests without a key on loopback.")
