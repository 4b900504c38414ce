"""The composition root: builds an Assistant for a bot from its configuration."""

from __future__ import annotations

from hybrid.bot import Bot
from hybrid.hardware import choose_placement
from hybrid.types import AdapterRef
from indexes import open_retriever
from server.assistant import Assistant
from server.attention import register_gqa_attention
from server.engine import AdapterLookup, GenerationEngine
from server.interactions import InteractionLog
from training import AdapterRecord, AdapterRegistry, load_base_model


def open_assistant(
    bot: Bot,
    *,
    retrieval: bool = True,
    adapters: AdapterLookup | None = None,
    log: InteractionLog | None = None,
) -> Assistant:
    """The bot's assistant: base model in a generation engine sized by `[server]`, and
    (unless `retrieval` is off) a retriever over the published index version.
    `adapters` resolves adapter names (default: a registry read per request)."""
    # Checked before the base model loads: a bot never synced fails at once.
    retriever = open_retriever(bot) if retrieval else None
    models = bot.config.models
    placement = choose_placement(models.device, models.dtype)
    base = load_base_model(
        models.base,
        base_dir=bot.root,
        models_dir=bot.models_dir,
        placement=placement,
        attention=register_gqa_attention() if placement.device == "cpu" else None,
    )
    engine = GenerationEngine(
        base,
        adapters=adapters or (lambda ref: find_adapter(bot, ref)),
        max_batch=bot.config.server.max_batch,
        max_waiting=bot.config.server.max_waiting,
    )
    return Assistant(
        engine,
        system_prompt=bot.config.bot.system_prompt,
        settings=bot.config.generation,
        retriever=retriever,
        top_k=bot.config.retrieval.top_k,
        budget=engine,
        log=log,
        handover=bot.config.bot.handover,
        handover_below=bot.config.retrieval.handover_below if retriever else 0.0,
    )


def find_adapter(bot: Bot, ref: AdapterRef) -> AdapterRecord:
    """The registry's record for `ref`, read when a request names it, so a promotion
    made by another process is seen at the next request."""
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        return registry.get(ref)
