"""Core value types shared by every package. Frozen msgspec Structs: cheap to build,
hashable, and serialisable to JSON as they are (the server returns them directly)."""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec

from hybrid.errors import InvalidInputError

Role = Literal["system", "user", "assistant"]


class Message(msgspec.Struct, frozen=True):
    """One turn of a conversation, in OpenAI chat terms."""

    role: Role
    content: str


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """A whole source document as loaded from the docs folder.

    `id` is stable across syncs: for a file, its path inside the docs folder without the
    suffix (`returns`, `shipping/international`); for a `.jsonl` line, the line's own `id`.
    """

    id: str
    title: str
    text: str
    source: str
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class Chunk(msgspec.Struct, frozen=True, kw_only=True):
    """A piece of a document, the unit that is embedded and retrieved. `start`/`end` are
    character offsets into the document text, kept for citations."""

    id: str
    document_id: str
    text: str
    heading_path: tuple[str, ...] = ()
    start: int = 0
    end: int = 0


class Hit(msgspec.Struct, frozen=True, kw_only=True):
    """A retrieved chunk with what a citation needs."""

    chunk_id: str
    document_id: str
    title: str
    source: str
    text: str
    score: float
    heading_path: tuple[str, ...] = ()


class AdapterRef(msgspec.Struct, frozen=True):
    """Names a style adapter: `name` (its active version) or `name@version`."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> AdapterRef:
        name, sep, version = text.partition("@")
        # Nine digits at most: a version stays well inside sqlite's (and C's) integers.
        if not name or len(name) > 200 or (sep and not re.fullmatch(r"[0-9]{1,9}", version)):
            raise InvalidInputError(
                f"bad adapter reference {text!r}", hint="use NAME or NAME@VERSION, e.g. style@3"
            )
        return cls(name, int(version) if sep else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


class Generation(msgspec.Struct, frozen=True, kw_only=True):
    """What a Generator returns for one request."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: Literal["stop", "length"]
    # The adapter version that answered (a request for `name` resolves to `name@N`).
    adapter: AdapterRef | None = None
    # Whether the generator kept the answer to the request's grounding figures as it
    # wrote (the local engine does; vLLM does not, so its answers are checked after).
    figures_grounded: bool = False
