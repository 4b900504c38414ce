"""Chunking that follows a document's structure.

A document is cut at its markdown headings first; each section is packed paragraph by
paragraph into chunks of at most `max_tokens` (a long paragraph is cut at sentences, a
long sentence at words), and consecutive chunks of a section share about `overlap`
tokens. Every chunk keeps its heading path and its exact character offsets in the
document, and chunk ids depend only on the text, so the same document always gives the
same chunks.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from hybrid.types import Chunk, Document

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_PARAGRAPH = re.compile(r"\S(?:.*?\S)??(?=\n[ \t]*\n|\s*\Z)", re.DOTALL)
_SENTENCE = re.compile(r"\S.*?(?:[.!?]+(?=\s)|\Z)", re.DOTALL)
_WORD = re.compile(r"\S+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """An estimate of the embedder's word-piece count: words (long ones count as several
    pieces, as WordPiece splits them) plus punctuation. Cheap and model-independent, so
    chunk ids do not change with the embedder."""
    return sum(math.ceil(len(token) / 6) for token in _TOKEN.findall(text))


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its heading path, then its text. Deliberately not the
    document id or file name, so the chunks of a renamed file embed (and cache) the same."""
    if not chunk.heading_path:
        return chunk.text
    return " > ".join(chunk.heading_path) + "\n\n" + chunk.text


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tokens: int


def chunk_document(document: Document, *, max_tokens: int, overlap: int) -> list[Chunk]:
    if overlap >= max_tokens:
        raise ValueError("overlap must be smaller than max_tokens")
    text = document.text
    chunks: list[Chunk] = []
    occurrences: Counter[str] = Counter()
    for heading_path, start, end in _sections(text):
        spans = list(_units(text, start, end, max_tokens))
        for first, last in _pack(spans, max_tokens, overlap):
            chunk_start, chunk_end = spans[first].start, spans[last].end
            body = text[chunk_start:chunk_end]
            identity = "\0".join((document.id, *heading_path, body))
            occurrences[identity] += 1  # identical chunks in one document stay distinct
            chunks.append(
                Chunk(
                    id=content_hash(f"{identity}\0{occurrences[identity]}")[:20],
                    document_id=document.id,
                    text=body,
                    heading_path=heading_path,
                    start=chunk_start,
                    end=chunk_end,
                )
            )
    return chunks


def _sections(text: str) -> Iterator[tuple[tuple[str, ...], int, int]]:
    """(heading path, body start, body end) for the text before the first heading and
    under each heading. Sections with no body are skipped."""
    path: list[tuple[int, str]] = []
    start = 0
    current: tuple[str, ...] = ()
    for match in _HEADING.finditer(text):
        if text[start : match.start()].strip():
            yield current, start, match.start()
        level = len(match.group(1))
        path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2))]
        current = tuple(title for _, title in path)
        start = match.end()
    if text[start:].strip():
        yield current, start, len(text)


def _units(text: str, start: int, end: int, max_tokens: int) -> Iterator[_Span]:
    """Paragraphs of text[start:end]; one longer than the budget is cut at sentences,
    and a sentence longer than the budget at words."""
    for paragraph in _PARAGRAPH.finditer(text, start, end):
        yield from _fit(text, paragraph.start(), paragraph.end(), max_tokens, (_SENTENCE, _WORD))


def _fit(
    text: str, start: int, end: int, max_tokens: int, splitters: tuple[re.Pattern[str], ...]
) -> Iterator[_Span]:
    tokens = count_tokens(text[start:end])
    if tokens <= max_tokens or not splitters:
        yield _Span(start, end, tokens)
        return
    splitter, *finer = splitters
    for piece in splitter.finditer(text, start, end):
        if splitter is _WORD:
            # Words are packed back together up to the budget by _pack.
            yield _Span(piece.start(), piece.end(), count_tokens(piece.group()))
        else:
            yield from _fit(text, piece.start(), piece.end(), max_tokens, tuple(finer))


def _pack(spans: list[_Span], max_tokens: int, overlap: int) -> Iterator[tuple[int, int]]:
    """Greedy packing of consecutive spans into (first, last) index ranges; each new
    range starts with the trailing spans of the previous one that fit in `overlap`."""
    first = 0
    while first < len(spans):
        last, total = first, spans[first].tokens
        while last + 1 < len(spans) and total + spans[last + 1].tokens <= max_tokens:
            last += 1
            total += spans[last].tokens
        yield first, last
        if last + 1 >= len(spans):
            return
        following, carried = last + 1, 0
        while (
            following - 1 > first
            and carried + spans[following - 1].tokens <= overlap
            and carried + spans[following - 1].tokens + spans[last + 1].tokens <= max_tokens
        ):
            following -= 1
            carried += spans[following].tokens
        first = following
