"""The composition root: builds an Assistant for a bot from its configuration."""

from __future__ import annotations

from hybrid.bot import Bot
from hybrid.hardware import choose_placement
from server.assistant import Assistant
from server.engine import LocalGenerator
from training import load_base_model


def open_assistant(bot: Bot) -> Assistant:
    models = bot.config.models
    base = load_base_model(
        models.base,
        base_dir=bot.root,
        models_dir=bot.models_dir,
        placement=choose_placement(models.device, models.dtype),
    )
    return Assistant(
        LocalGenerator(base),
        system_prompt=bot.config.bot.system_prompt,
        settings=bot.config.generation,
    )
