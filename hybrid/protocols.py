"""The extension points. Each has one required method; any object with it qualifies."""

from __future__ import annotations

from collections.abc import Sequence
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


@runtime_checkable
class Generator(Protocol):
    """Produces the assistant's reply to a conversation, optionally through an adapter."""

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        adapter: AdapterRef | None = None,
    ) -> Generation: ...
