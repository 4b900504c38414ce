"""The composition root: builds a bot's generator, retriever and assistant from its
configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hybrid.bot import Bot
from hybrid.hardware import choose_placement
from hybrid.protocols import Generator
from hybrid.types import AdapterRef
from indexes import HybridRetriever, open_retriever
from server.assistant import Assistant, TokenBudget
from server.attention import register_gqa_attention
from server.engine import AdapterLookup, GenerationEngine
from server.interactions import InteractionLog
from server.vllm_generator import VllmGenerator
from training import AdapterRecord, AdapterRegistry, load_base_model, load_tokenizer


class ServedGenerator(Generator, TokenBudget, Protocol):
    """What the server runs answers on: the local engine or the vLLM client."""

    def close(self) -> None: ...


@dataclass
class Parts:
    """What answers for a bot, side by side: the assistant composes the other two."""

    generator: ServedGenerator
    retriever: HybridRetriever | None
    assistant: Assistant


def open_assistant(
    bot: Bot,
    *,
    retrieval: bool = True,
    adapters: AdapterLookup | None = None,
    log: InteractionLog | None = None,
) -> Assistant:
    """The bot's assistant (see compose); close it to stop its engine."""
    return compose(bot, retrieval=retrieval, adapters=adapters, log=log).assistant


def compose(
    bot: Bot,
    *,
    retrieval: bool = True,
    adapters: AdapterLookup | None = None,
    log: InteractionLog | None = None,
) -> Parts:
    """The generator (the base model in a generation engine sized by `[server]`, or a
    vLLM client), (unless `retrieval` is off) a retriever over the published index
    version, and the assistant over both. `adapters` resolves adapter names (default: a
    registry read per request)."""
    # Checked before the base model loads: a bot never synced fails at once.
    retriever = open_retriever(bot) if retrieval else None
    lookup = adapters or (lambda ref: find_adapter(bot, ref))
    generator = _vllm(bot, lookup) if bot.config.models.generator == "vllm" else _local(bot, lookup)
    assistant = Assistant(
        generator,
        system_prompt=bot.config.bot.system_prompt,
        settings=bot.config.generation,
        retriever=retriever,
        top_k=bot.config.retrieval.top_k,
        budget=generator,
        log=log,
        handover=bot.config.bot.handover,
        handover_below=bot.config.retrieval.handover_below if retriever else 0.0,
    )
    return Parts(generator, retriever, assistant)


def _local(bot: Bot, adapters: AdapterLookup) -> GenerationEngine:
    models = bot.config.models
    placement = choose_placement(models.device, models.dtype)
    base = load_base_model(
        models.base,
        base_dir=bot.root,
        models_dir=bot.models_dir,
        placement=placement,
        attention=register_gqa_attention() if placement.device == "cpu" else None,
    )
    return GenerationEngine(
        base,
        adapters=adapters,
        max_batch=bot.config.server.max_batch,
        max_waiting=bot.config.server.max_waiting,
    )


def _vllm(bot: Bot, adapters: AdapterLookup) -> VllmGenerator:
    """A client of the vLLM server at [vllm] url, which serves the base model under its
    hybrid name (`hybrid vllm command`); tokenizing stays here, with the same tokenizer."""
    models = bot.config.models

    def listed() -> list[AdapterRecord]:
        with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
            return registry.list()

    return VllmGenerator(
        bot.config.vllm,
        tokenizer=load_tokenizer(models.base, base_dir=bot.root, models_dir=bot.models_dir),
        base_model=models.base,
        adapters=adapters,
        listed=listed,
    )


def find_adapter(bot: Bot, ref: AdapterRef) -> AdapterRecord:
    """The registry's record for `ref`, read when a request names it, so a promotion
    made by another process is seen at the next request."""
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        return registry.get(ref)
