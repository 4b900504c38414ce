from __future__ import annotations

import typer

from hybrid.bot import Bot, find_bot
from hybrid.hardware import limit_threads


def current_bot(ctx: typer.Context) -> Bot:
    """The bot a command works on: -C DIR, else HYBRID_BOT, else the nearest hybrid.toml.
    Its `models.threads` setting applies to the command from here on."""
    bot = find_bot(ctx.find_root().obj)
    limit_threads(bot.config.models.threads)
    return bot
