"""What the generation engine keeps about one request, from its queueing to its last
token, and about its prompt between the prefill thread and the decoding thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hybrid.types import AdapterRef
from server.adapter_set import BASE
from server.grounding import AnswerGuard
from server.sampling import TokenSampler
from server.streams import TokenStream


@dataclass
class Request:
    prompt_ids: list[int]
    max_tokens: int
    stop: tuple[str, ...]
    adapter: AdapterRef | None  # resolved: name@version
    adapter_path: str | None
    deadline: float | None
    sampler: TokenSampler
    prefix_length: int = 0  # leading prompt tokens that other requests share (see PrefixCache)
    stream: TokenStream = field(default_factory=TokenStream)  # what its caller reads
    guard: AnswerGuard = field(default_factory=lambda: AnswerGuard(None))
    answer_ids: list[int] = field(default_factory=list)  # the answer's tokens (no end token)
    text: str = ""  # the answer's text so far, as the guard reads it
    sampled: int = 0  # tokens generated, an end token included
    sent: int = 0  # characters of the answer already streamed
    final_text: str | None = None

    @property
    def key(self) -> str:
        return str(self.adapter) if self.adapter is not None else BASE


@dataclass
class Prefilling:
    """A prompt the prefill thread is part way through: its cache holds `done` tokens."""

    request: Request
    cache: Any  # a transformers DynamicCache (one row), or None before the first chunk
    done: int

    @property
    def left(self) -> int:
        return len(self.request.prompt_ids) - self.done


@dataclass
class Prefilled:
    """A prompt run by the prefill thread, for the decoding thread to stack and continue."""

    request: Request
    cache: Any  # its KV cache (a transformers DynamicCache, one row)
    mask: Any  # (1, prompt length) ones
    logits: Any  # (1, vocabulary): the first answer token's
