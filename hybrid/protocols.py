"""The extension points. Each has one required method; any object with it qualifies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from hybrid.config import GenerationSettings
from hybrid.types import AdapterRef, Generation, Hit, Message

if TYPE_CHECKING:
    import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors, one row per text."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class Retriever(Protocol):
    """Finds the chunks that best answer a query, best first."""

    def search(self, query: str, k: int) -> list[Hit]: ...

    def sources(self, query: str, k: int) -> list[Hit]:
        """What a prompt gives the model for `query`: `search`'s hits, or parts of them."""
        ...

    def relevance(self, query: str) -> float:
        """How closely the best chunk matches `query` (for a hand-over threshold)."""
        ...

    def version(self) -> int | None:
        """The index version searches read now (logged with each answer)."""
        ...


@dataclass(frozen=True)
class GenerationRequest:
    """One answer to generate. `prompt_ids`: the prompt already rendered with the chat
    template and tokenized (the assistant does it once, to fit the prompt in the context);
    without them the generator renders `messages` itself."""

    messages: Sequence[Message]
    settings: GenerationSettings
    adapter: AdapterRef | None = None
    prompt_ids: Sequence[int] | None = None
    stop: tuple[str, ...] = ()
    timeout: float | None = None  # seconds, after which the answer is abandoned
    # The text (sources and question) whose figures alone the answer may write, when
    # settings.grounded_figures; None: any figure.
    grounding: str | None = None


@runtime_checkable
class GenerationStream(Protocol):
    """One answer as it is generated. `next_delta` blocks for the next piece of text and
    returns None at the end, when `result` is set; it raises the error that ended the
    generation. `cancel()` stops it (the client went away)."""

    result: Generation | None

    def next_delta(self, timeout: float | None = None) -> str | None: ...

    def ready(self) -> bool:
        """Whether next_delta would return without waiting."""
        ...

    def cancel(self) -> None: ...


@runtime_checkable
class Generator(Protocol):
    """Generates the assistant's reply to a prompt, optionally through an adapter, as a
    stream. It raises at once for what it can tell before generating: an unknown adapter,
    a prompt longer than the context, a full queue, an engine that is down."""

    def stream(self, request: GenerationRequest) -> GenerationStream: ...


def generate(generator: Generator, request: GenerationRequest) -> Generation:
    """The whole answer at once."""
    return collect(generator.stream(request))


def collect(stream: GenerationStream) -> Generation:
    """Read `stream` to its end: its Generation."""
    try:
        while stream.next_delta() is not None:
            pass
    finally:
        stream.cancel()  # a no-op once finished
    assert stream.result is not None
    return stream.result
