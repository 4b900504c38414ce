"""The Retriever: dense (FAISS) and lexical (FTS5 BM25) rankings fused by reciprocal
rank fusion, over the published index version.

Each search reads the published-version pointer first and uses that version's FAISS
folder and store rows only, so a sync publishing a new version mid-search cannot mix two
versions into one answer. Safe to share between threads.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.bot import Bot
from hybrid.config import RetrievalMode, RetrievalSettings
from hybrid.errors import HybridError, UnavailableError
from hybrid.protocols import Embedder
from hybrid.types import Hit
from indexes.embedders import embedder_for_bot
from indexes.focus import focus
from indexes.store import IndexStore
from indexes.vector_index import VectorIndex

if TYPE_CHECKING:
    import numpy as np

_QUERY_WORD = re.compile(r"\w+")
# Words that carry no topic in a customer's question. Dropped from the lexical query only:
# BM25 would mostly ignore them, but in an OR query they still let every chunk match.
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it",
    "its", "me", "my", "of", "on", "or", "our", "so", "that", "the", "their", "them", "then",
    "there", "these", "they", "this", "to", "was", "we", "were", "what", "when", "where",
    "which", "who", "why", "will", "with", "would", "you", "your",
})
# fmt: on


@dataclass(frozen=True)
class Ranked:
    """One ranking's view of a chunk, before the store rows are read."""

    num: int
    score: float


class IndexNotReadyError(UnavailableError):
    """Nothing has been synced yet, so there is nothing to search."""

    code = "index_not_ready"

    def __init__(self) -> None:
        super().__init__(
            "the index is empty: nothing has been synced yet",
            hint="run `hybrid index sync` first",
        )


def open_retriever(bot: Bot) -> HybridRetriever:
    """The bot's retriever with its configured embedder. Before the first sync it fails
    at once, before the embedder is loaded."""
    with IndexStore(bot.database) as store:
        if store.published_version() is None:
            raise IndexNotReadyError()
    return HybridRetriever.for_bot(bot, embedder_for_bot(bot))


class HybridRetriever:
    def __init__(
        self,
        database: Path,
        indexes_dir: Path,
        embedder: Embedder,
        settings: RetrievalSettings | None = None,
    ) -> None:
        self.database = database
        self.indexes_dir = indexes_dir
        self.embedder = embedder
        self.settings = settings or RetrievalSettings()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._loaded: VectorIndex | None = None

    @classmethod
    def for_bot(cls, bot: Bot, embedder: Embedder) -> HybridRetriever:
        return cls(bot.database, bot.indexes_dir, embedder, bot.config.retrieval)

    def search(
        self,
        query: str,
        k: int,
        *,
        filters: Mapping[str, Any] | None = None,
        mode: RetrievalMode | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        """The k best chunks for `query`, best first. `filters` keeps only documents whose
        metadata has these exact values; `query_vector` skips embedding the query."""
        mode = mode or self.settings.mode
        store = self._store()
        version = store.published_version()
        if version is None:
            raise IndexNotReadyError()
        depth = max(k, self.settings.candidates)
        allowed = store.matching_chunk_nums(version, dict(filters)) if filters else None
        rankings: list[tuple[float, list[Ranked]]] = []
        if mode in ("hybrid", "dense"):
            if query_vector is None:
                query_vector = self._query_vector(query)
            dense = self._dense(version, query_vector, depth, allowed)
            rankings.append((self.settings.dense_weight, dense))
        if mode in ("hybrid", "lexical"):
            lexical = _lexical(store, version, query, depth, filters)
            rankings.append((self.settings.lexical_weight, lexical))
        ranked = rankings[0][1] if len(rankings) == 1 else self._fuse(rankings)
        # Equal scores are ordered by chunk id, which (unlike row numbers) does not depend
        # on the order documents were indexed in: the same files give the same ranking.
        return sorted(_hits(store, _top(ranked, k)), key=lambda hit: (-hit.score, hit.chunk_id))[:k]

    def sources(self, query: str, k: int) -> list[Hit]:
        """What a prompt gives the model for `query`: the k best chunks, cut to the
        `retrieval.sentences` sentences most similar to it when that is set."""
        hits = self.search(query, k)
        if not self.settings.sentences:
            return hits
        return focus(hits, self._query_vector(query), self.embedder, self.settings.sentences)

    def relevance(self, query: str) -> float:
        """The dense (cosine) similarity of the best chunk to `query`: rank fusion's
        scores depend on ranks alone, so they cannot say that nothing matches."""
        store = self._store()
        version = store.published_version()
        if version is None:
            raise IndexNotReadyError()
        best = self._dense(version, self._query_vector(query), 1, None)
        return best[0].score if best else 0.0

    def version(self) -> int | None:
        """The published index version searches read now (None before the first sync)."""
        return self._store().published_version()

    def _fuse(self, rankings: list[tuple[float, list[Ranked]]]) -> list[Ranked]:
        scores: dict[int, float] = {}
        for weight, ranking in rankings:
            for rank, item in enumerate(ranking, start=1):
                scores[item.num] = scores.get(item.num, 0.0) + weight / (self.settings.rrf_k + rank)
        return [Ranked(num, score) for num, score in scores.items()]

    def _dense(
        self, version: int, vector: np.ndarray, depth: int, allowed: set[int] | None
    ) -> list[Ranked]:
        index = self._vector_index(version)
        if allowed is not None:
            import faiss
            import numpy as np

            if not allowed:
                return []
            selector = faiss.IDSelectorBatch(np.array(sorted(allowed), dtype="int64"))
            params = faiss.SearchParameters(sel=selector)
            k = min(depth, len(allowed))
            scores, ids = index.index.search(vector.reshape(1, -1), k, params=params)
            pairs = zip(ids[0], scores[0], strict=True)
            return [Ranked(int(i), float(s)) for i, s in pairs if i >= 0]
        return [Ranked(num, score) for num, score in index.search(vector, depth)]

    def _vector_index(self, version: int) -> VectorIndex:
        """The loaded FAISS index of `version`; loading a newer one replaces the old."""
        with self._lock:
            if self._loaded is None or self._loaded.config.version != version:
                self._loaded = VectorIndex.load(self.indexes_dir / str(version))
                if self._loaded.config.embedder != self.embedder.name:
                    raise HybridError(
                        f"index version {version} was built with embedder "
                        f"{self._loaded.config.embedder!r}, but the config names "
                        f"{self.embedder.name!r}",
                        hint="run `hybrid index sync` to re-embed with the configured one",
                    )
            return self._loaded

    def _query_vector(self, query: str) -> np.ndarray:
        """The query's embedding; the assistant asks for a question's relevance and then
        searches for it, so this thread's last one is kept."""
        last = getattr(self._local, "query", None)
        if last is None or last[0] != query:
            last = self._local.query = (query, self.embedder.embed([query])[0])
        return last[1]

    def _store(self) -> IndexStore:
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = IndexStore(self.database)
        return store


def _top(ranked: list[Ranked], k: int) -> list[Ranked]:
    """The k best, with every candidate tied with the k-th (chunk ids break the ties)."""
    if len(ranked) <= k:
        return ranked
    cutoff = sorted((item.score for item in ranked), reverse=True)[k - 1]
    return [item for item in ranked if item.score >= cutoff]


def _lexical(
    store: IndexStore, version: int, query: str, depth: int, filters: Mapping[str, Any] | None
) -> list[Ranked]:
    words = [w for w in _QUERY_WORD.findall(query.lower()) if w not in _STOPWORDS]
    if not words:
        return []
    # Each word quoted, so FTS5 syntax in a question (AND, NEAR, *, ") is just text.
    match = " OR ".join(f'"{word}"' for word in dict.fromkeys(words))
    rows = store.lexical_search(version, match, depth, dict(filters) if filters else None)
    return [Ranked(num, score) for num, score in rows]


def _hits(store: IndexStore, ranked: list[Ranked]) -> list[Hit]:
    rows = store.chunks([item.num for item in ranked])
    hits = []
    for item in ranked:
        row = rows.get(item.num)
        if row is None:  # pruned by a sync that published twice during this search
            continue
        hits.append(
            Hit(
                chunk_id=row.chunk.id,
                document_id=row.chunk.document_id,
                title=row.title,
                source=row.source,
                text=row.chunk.text,
                score=item.score,
                heading_path=row.chunk.heading_path,
            )
        )
    return hits
