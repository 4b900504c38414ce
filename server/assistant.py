"""The assistant: retrieve -> build the prompt -> generate -> cite. Plain Python with no
web imports; the CLI's `hybrid ask` and the HTTP server both answer through it."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hybrid.config import GenerationSettings
from hybrid.errors import HybridError
from hybrid.prompt import build_messages
from hybrid.protocols import Generator, Retriever
from hybrid.types import AdapterRef, Generation, Hit


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
        top_k: int = 4,
    ) -> None:
        self.generator = generator
        self.system_prompt = system_prompt
        self.settings = settings
        self.retriever = retriever
        self.top_k = top_k

    def answer(self, question: str, *, adapter: AdapterRef | None = None) -> Answer:
        question = question.strip()
        if not question:
            raise HybridError("the question is empty")
        started = time.perf_counter()
        sources = self.retriever.search(question, self.top_k) if self.retriever else []
        messages = build_messages(self.system_prompt, question, sources)
        generation = self.generator.generate(messages, self.settings, adapter)
        return Answer(
            question=question,
            text=generation.text,
            citations=sources,
            adapter=adapter,
            generation=generation,
            seconds=time.perf_counter() - started,
        )
