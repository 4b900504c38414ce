"""`hybrid index sync`: make the index match the docs folder, building the next version
beside the published one and publishing it with one atomic switch.

Reads top to bottom: lock -> recover from an interrupted sync -> load and diff the
documents -> store the changed ones (embedding only chunks the cache lacks) -> patch or
build the FAISS index -> write its folder -> publish -> prune old versions.
A kill at any point leaves the published version untouched; the next sync removes the
unfinished one.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.bot import Bot
from hybrid.config import IndexSettings
from hybrid.errors import ConflictError, InvalidInputError
from hybrid.protocols import Embedder
from hybrid.types import Chunk, Document
from indexes import vector_index
from indexes.chunking import chunk_document, content_hash, embedding_text
from indexes.loaders import LoadedDocuments, LoadProblem, load_documents
from indexes.store import DocumentRow, IndexStore
from indexes.vector_index import VectorIndex, VectorIndexConfig

if TYPE_CHECKING:
    import faiss
    import numpy as np

Progress = Callable[[int, int], None]  # (chunks embedded so far, chunks to embed)
Revision = tuple[Document, str, float, list[tuple[Chunk, str]]]


@dataclass
class SyncSummary:
    version: int | None  # the published version after the sync
    previous: int | None
    published: bool  # whether this sync published a new version
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    problems: list[LoadProblem] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [str(problem) for problem in self.problems]
        return data


@dataclass(frozen=True)
class _Diff:
    added: list[Document]
    updated: list[Document]
    deleted: list[DocumentRow]
    unchanged: int
    old: dict[str, DocumentRow]
    hashes: dict[str, str]  # document id -> document_hash, computed once

    @property
    def replaced(self) -> list[int]:
        """Revision numbers that leave the index: edited and deleted documents."""
        return [self.old[doc.id].num for doc in self.updated] + [row.num for row in self.deleted]


def sync_index(
    bot: Bot,
    embedder: Embedder,
    *,
    paths: Sequence[Path] = (),
    rebuild: bool = False,
    progress: Progress | None = None,
) -> SyncSummary:
    """Bring the index up to date with the docs folder (or just `paths` inside it).
    `rebuild` re-chunks every document and rebuilds the vector index from cached
    embeddings (the repair for a failed `index check`)."""
    started = time.perf_counter()
    settings = bot.config.index
    scope = _scope(bot.docs_dir, paths)
    with _sync_lock(bot.state_dir), IndexStore(bot.database) as store:
        recover(store, bot.indexes_dir)
        if rebuild and store.fts_problems():
            store.rebuild_fts()
        loaded = load_documents(
            bot.docs_dir, paths=paths, max_bytes=int(settings.max_file_mb * 2**20)
        )
        parent = store.published_version()
        parent_row = store.version(parent) if parent else None
        chunking = {"chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap}
        # New chunking settings or a new embedder: every document gets new chunks/vectors.
        rechunk = (
            rebuild
            or parent_row is None
            or (parent_row.chunking, parent_row.embedder, parent_row.dimension)
            != (chunking, embedder.name, embedder.dimension)
        )
        diff = _diff(loaded, store.documents(parent) if parent else {}, scope, rechunk)
        summary = SyncSummary(
            version=parent,
            previous=parent,
            published=False,
            added=[doc.id for doc in diff.added],
            updated=[doc.id for doc in diff.updated],
            deleted=[row.id for row in diff.deleted],
            unchanged=diff.unchanged,
            problems=loaded.problems,
        )
        revisions = _revisions(diff, settings)
        replaced_chunks = store.chunk_nums_of_documents(diff.replaced)
        chunk_count = (
            ((parent_row.chunk_count or 0) if parent_row else 0)
            - len(replaced_chunks)
            + sum(len(chunks) for *_, chunks in revisions)
        )
        kind = vector_index.choose_kind(settings.kind, chunk_count, settings.hnsw_min_chunks)
        # `rechunk` (a rebuild, a new embedder or new chunking) marks every document
        # updated, so an unchanged diff and index kind mean there is nothing to do.
        changed = diff.added or diff.updated or diff.deleted
        if parent_row is not None and parent_row.kind == kind and not changed:
            summary.seconds = time.perf_counter() - started
            return summary
        version = store.begin_version(
            parent,
            embedder=embedder.name,
            dimension=embedder.dimension,
            kind=kind,
            chunking=chunking,
        )
        try:
            new_nums = _store_revisions(
                store, version, revisions, embedder, settings.embed_batch_size, summary, progress
            )
            if parent:
                store.copy_documents(parent, version, except_nums=diff.replaced)
            index = _vector_index(
                bot, store, parent, version, new_nums, replaced_chunks, embedder, kind
            )
            summary.seconds = time.perf_counter() - started
            store.finish_version(version, summary.to_dict())
            config = VectorIndexConfig(
                version=version,
                embedder=embedder.name,
                dimension=embedder.dimension,
                kind=kind,
                chunk_count=int(index.ntotal),
            )
            vector_index.write_version(bot.indexes_dir, index, config)
            store.publish(version)
        except BaseException:
            # Not reached on kill -9; then the next sync's recover() does the same.
            store.delete_versions([version])
            raise
        prune(store, bot.indexes_dir, settings.keep_versions)
        summary.version, summary.published = version, True
        summary.seconds = time.perf_counter() - started
        return summary


def recover(store: IndexStore, indexes_dir: Path) -> list[int]:
    """Delete what an interrupted sync left: unpublished versions, their rows and folders."""
    unfinished = [row.version for row in store.versions(status="building")]
    store.delete_versions(unfinished)
    kept = {row.version for row in store.versions()}
    vector_index.remove_stale_folders(indexes_dir, kept)
    return unfinished


def prune(store: IndexStore, indexes_dir: Path, keep: int) -> list[int]:
    """Keep the `keep` most recently published versions (the current one among them)."""
    published = store.publication_history()
    dropped = [row.version for row in published[keep:]]
    store.delete_versions(dropped)
    vector_index.remove_stale_folders(indexes_dir, {row.version for row in published[:keep]})
    return dropped


class SyncInProgressError(ConflictError):
    code = "sync_in_progress"


@contextmanager
def _sync_lock(state_dir: Path) -> Iterator[None]:
    """One sync at a time per bot. The OS drops the lock when its holder dies."""
    with (state_dir / "index.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SyncInProgressError(
                "another index sync is running for this bot", hint="wait for it to finish"
            ) from exc
        yield


def _scope(docs_dir: Path, paths: Sequence[Path]) -> list[str]:
    """The source prefixes a sync of `paths` may change ([""] = the whole folder)."""
    if not paths:
        return [""]
    root = docs_dir.resolve()
    prefixes = []
    for path in paths:
        resolved = path.resolve()
        if not resolved.is_relative_to(root):
            raise InvalidInputError(f"{path} is not inside the docs folder {docs_dir}")
        relative = resolved.relative_to(root).as_posix()
        prefixes.append("" if relative == "." else relative)
    return prefixes


def _in_scope(source: str, scope: list[str]) -> bool:
    return any(not p or source == p or source.startswith(p.rstrip("/") + "/") for p in scope)


def document_hash(document: Document) -> str:
    """What identifies a document's content: a rename keeps it, any edit changes it."""
    return content_hash(
        json.dumps([document.title, document.text, document.metadata], sort_keys=True)
    )


def _diff(
    loaded: LoadedDocuments, old: dict[str, DocumentRow], scope: list[str], rechunk: bool
) -> _Diff:
    added, updated, unchanged = [], [], 0
    hashes = {document.id: document_hash(document) for document in loaded.documents}
    for document in loaded.documents:
        row = old.get(document.id)
        if row is None:
            added.append(document)
        elif rechunk or (row.content_hash, row.source) != (hashes[document.id], document.source):
            updated.append(document)
        else:
            unchanged += 1
    present = {document.id for document in loaded.documents}
    failed = loaded.failed_sources  # a file that failed to load keeps what it had
    deleted = [
        row
        for doc_id, row in old.items()
        if doc_id not in present and _in_scope(row.source, scope) and row.source not in failed
    ]
    return _Diff(added, updated, deleted, unchanged, old, hashes)


def _revisions(diff: _Diff, settings: IndexSettings) -> list[Revision]:
    """The added and edited documents as new revisions: chunked, each chunk with the hash
    its embedding is cached under."""
    revisions: list[Revision] = []
    for document in (*diff.added, *diff.updated):
        previous = diff.old.get(document.id)
        chunks = chunk_document(
            document, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
        )
        revisions.append(
            (
                document,
                diff.hashes[document.id],
                previous.created_at if previous else time.time(),
                [(chunk, content_hash(embedding_text(chunk))) for chunk in chunks],
            )
        )
    return revisions


def _store_revisions(
    store: IndexStore,
    version: int,
    revisions: list[Revision],
    embedder: Embedder,
    batch_size: int,
    summary: SyncSummary,
    progress: Progress | None,
) -> list[int]:
    """Store the revisions in batches, each batch in one transaction with the embeddings
    it needed (only those the cache lacks). Returns the new revision numbers."""
    texts = {h: embedding_text(c) for *_, chunks in revisions for c, h in chunks}
    cached = set(store.cached_vectors(embedder.name, texts))
    missing = [h for h in texts if h not in cached]
    summary.chunks_embedded = len(missing)
    summary.chunks_reused = sum(len(chunks) for *_, chunks in revisions) - len(missing)
    embedded_so_far = 0
    if progress:
        progress(0, len(missing))
    nums: list[int] = []
    for batch in _batches(revisions, batch_size):
        wanted = [h for *_, chunks in batch for _, h in chunks if h not in cached]
        wanted = list(dict.fromkeys(wanted))
        vectors: dict[str, bytes] = {}
        for start in range(0, len(wanted), batch_size):
            hashes = wanted[start : start + batch_size]
            matrix = embedder.embed([texts[h] for h in hashes])
            vectors.update(
                zip(hashes, (row.astype("float32").tobytes() for row in matrix), strict=True)
            )
            embedded_so_far += len(hashes)
            if progress:
                progress(embedded_so_far, len(missing))
        nums += store.add_revisions(version, batch, vectors, embedder.name)
        cached.update(vectors)
    return nums


def _batches(revisions: list[Revision], chunks_per_batch: int) -> Iterator[list[Revision]]:
    """Whole documents, about `chunks_per_batch` chunks at a time: the unit of one
    transaction, so a crash loses at most one batch of work."""
    batch: list[Revision] = []
    size = 0
    for revision in revisions:
        batch.append(revision)
        size += len(revision[3])
        if size >= chunks_per_batch:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _vector_index(
    bot: Bot,
    store: IndexStore,
    parent: int | None,
    version: int,
    new_nums: list[int],
    replaced_chunks: list[int],
    embedder: Embedder,
    kind: str,
) -> faiss.Index:
    """Patch the parent's flat index with the changes, or build the whole index from the
    embedding cache (a new embedder, a new kind, an HNSW index, or a first build)."""
    if parent is not None:
        folder = bot.indexes_dir / str(parent)
        published = VectorIndex.load(folder) if folder.is_dir() else None
        if published and vector_index.can_patch(published, kind, embedder.name, embedder.dimension):
            import numpy as np

            ids, vectors = _vectors(store, store.chunk_hashes(version, new_nums), embedder)
            removed = np.array(replaced_chunks, dtype="int64")
            return vector_index.patch(published, removed, ids, vectors)
    ids, vectors = _vectors(store, store.chunk_hashes(version), embedder)
    return vector_index.build(kind, embedder.dimension, ids, vectors)


def _vectors(
    store: IndexStore, chunk_hashes: list[tuple[int, str]], embedder: Embedder
) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    cache = store.cached_vectors(embedder.name, (h for _, h in chunk_hashes))
    ids = np.array([num for num, _ in chunk_hashes], dtype="int64")
    vectors = np.frombuffer(b"".join(cache[h] for _, h in chunk_hashes), dtype="float32")
    return ids, vectors.reshape(len(chunk_hashes), embedder.dimension)
