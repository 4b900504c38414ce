from __future__ import annotations

import typer

from hybrid.bot import Bot, find_bot


def current_bot(ctx: typer.Context) -> Bot:
    """The bot a command works on: -C DIR, else HYBRID_BOT, else the nearest hybrid.toml."""
    return find_bot(ctx.find_root().obj)
