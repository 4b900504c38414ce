"""Focusing retrieved chunks on the question: of all the sentences in the chunks a
question retrieved, keep the few most similar to it (`retrieval.sentences`).

A small model given whole chunks often answers with a neighbouring figure of the right
policy ("refunds take 5 to 7 days" for the return window); given the sentences that
answer, it copies the right one far more often, with fewer prompt tokens. Each kept
sentence stays in its chunk, so citations still name the chunk, and in its document
order, so a list or a condition reads as written.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import msgspec

from hybrid.protocols import Embedder
from hybrid.types import Hit

if TYPE_CHECKING:
    import numpy as np

# Within a line, a sentence ends at . ! ? before the next capital, bold or digit;
# "e.g. the" and ".97" stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\**[A-Z0-9])")
_HEADING = re.compile(r"^#+\s")
_TABLE_RULE = re.compile(r"^\|[\s:|-]+\|$")


def sentences(text: str) -> list[str]:
    """`text`'s sentences, list items and table rows, headings left out (the source's
    title names the section). A table row comes under its table's header row, since a
    row alone does not say what its cells are."""
    units: list[str] = []
    header: str | None = None
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            header = None
            units += (part.strip() for part in _SENTENCE_END.split(line))
        elif header is None:
            header = line
        elif not _TABLE_RULE.match(line):
            units.append(f"{header}\n{line}")
    return [unit for unit in units if unit and not _HEADING.match(unit)]


def focus(hits: list[Hit], question: np.ndarray, embedder: Embedder, keep: int) -> list[Hit]:
    """`hits` cut to the `keep` sentences most similar to `question` (its embedding),
    best hit first as before; a hit none of whose sentences is kept is left out."""
    split = [sentences(hit.text) for hit in hits]
    flat = [sentence for parts in split for sentence in parts]
    if len(flat) <= keep:
        return hits
    similarity = embedder.embed(flat) @ question
    chosen = set(sorted(range(len(flat)), key=lambda i: -similarity[i])[:keep])
    focused, start = [], 0
    for hit, parts in zip(hits, split, strict=True):
        kept = [part for i, part in enumerate(parts, start) if i in chosen]
        start += len(parts)
        if kept:
            # Rows of one table share its header line: write it once.
            lines = dict.fromkeys(line for unit in kept for line in unit.splitlines())
            focused.append(msgspec.structs.replace(hit, text="\n".join(lines)))
    return focused
