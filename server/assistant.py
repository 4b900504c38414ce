"""The assistant: retrieve -> build the prompt -> generate -> cite. Plain Python with no
web imports; the CLI's `hybrid ask` and the HTTP server both answer through it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from hybrid.config import GenerationSettings
from hybrid.errors import HybridError
from hybrid.prompt import build_messages
from hybrid.protocols import Generator, Retriever
from hybrid.types import AdapterRef, Generation, Hit, Message


class TokenBudget(Protocol):
    """How much prompt fits: the model's context and its count of a prompt's tokens."""

    context_window: int

    def prompt_tokens(self, messages: Sequence[Message]) -> int: ...


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: list[Hit]
    adapter: AdapterRef | None
    generation: Generation
    seconds: float


class Assistant:
    def __init__(
        self,
        generator: Generator,
        *,
        system_prompt: str,
        settings: GenerationSettings,
        retriever: Retriever | None = None,
        top_k: int = 3,
        budget: TokenBudget | None = None,
    ) -> None:
        self.generator = generator
        self.system_prompt = system_prompt
        self.settings = settings
        self.retriever = retriever
        self.top_k = top_k
        self.budget = budget

    def answer(self, question: str, *, adapter: AdapterRef | None = None) -> Answer:
        question = question.strip()
        if not question:
            raise HybridError("the question is empty")
        started = time.perf_counter()
        sources = self.retriever.search(question, self.top_k) if self.retriever else []
        messages = build_messages(self.system_prompt, question, sources)
        while sources and not self._fits(messages):
            sources = sources[:-1]  # drop the lowest-ranked source, never the question
            messages = build_messages(self.system_prompt, question, sources)
        generation = self.generator.generate(messages, self.settings, adapter)
        return Answer(
            question=question,
            text=generation.text,
            citations=sources,
            adapter=generation.adapter,
            generation=generation,
            seconds=time.perf_counter() - started,
        )

    def _fits(self, messages: Sequence[Message]) -> bool:
        """Whether the prompt leaves room for a full-length answer."""
        if self.budget is None:
            return True
        needed = self.budget.prompt_tokens(messages) + self.settings.max_new_tokens
        return needed <= self.budget.context_window
