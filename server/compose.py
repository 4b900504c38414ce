"""The composition root: builds an Assistant for a bot from its configuration."""

from __future__ import annotations

from hybrid.bot import Bot
from hybrid.hardware import choose_placement
from indexes import HybridRetriever, IndexNotReadyError, embedder_for_bot, published_version
from server.assistant import Assistant
from server.engine import LocalGenerator
from training import load_base_model


def open_assistant(bot: Bot, *, retrieval: bool = True) -> Assistant:
    """The bot's assistant: base model, and (unless `retrieval` is off) a retriever over
    the published index version."""
    retriever = None
    if retrieval:
        if published_version(bot) is None:
            raise IndexNotReadyError(
                "the document index is empty",
                hint="run `hybrid index sync` first, or ask with --no-retrieval",
            )
        retriever = HybridRetriever.for_bot(bot, embedder_for_bot(bot))
    models = bot.config.models
    base = load_base_model(
        models.base,
        base_dir=bot.root,
        models_dir=bot.models_dir,
        placement=choose_placement(models.device, models.dtype),
    )
    generator = LocalGenerator(base)
    return Assistant(
        generator,
        system_prompt=bot.config.bot.system_prompt,
        settings=bot.config.generation,
        retriever=retriever,
        top_k=bot.config.retrieval.top_k,
        budget=generator,
    )
