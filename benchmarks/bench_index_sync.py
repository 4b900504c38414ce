"""Incremental sync against a full rebuild, on a generated corpus of 2,000 documents with
the embedded all-MiniLM-L6-v2; and the end-to-end throughput of a full sync (load, chunk,
embed, store, build FAISS, publish) against a plain sentence-transformers `encode` of the
same chunk texts."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from tempfile import TemporaryDirectory

from benchmarks.common import Figure
from benchmarks.corpus import edit_one, write_corpus
from hybrid.bot import Bot, init_bot
from indexes import SentenceTransformerEmbedder, embedder_for_bot, load_documents, sync_index
from indexes.chunking import chunk_document, embedding_text

DOCUMENTS = 2000
# The throughput comparison embeds every chunk twice per repeat (ours, then plain), so it
# uses the first documents of the same corpus: 450 chunks, about 12 s each way.
THROUGHPUT_DOCUMENTS = 150
REPEATS = 3


def run() -> list[Figure]:
    return _throughput() + _incremental()


def _incremental() -> list[Figure]:
    with TemporaryDirectory() as scratch:
        bot = _corpus_bot(Path(scratch), DOCUMENTS)
        embedder = _warm_embedder(bot)
        full = sync_index(bot, embedder)
        edit_one(bot.docs_dir)
        incremental = sync_index(bot, embedder)
    assert incremental.updated == ["doc-000007"], incremental.updated
    chunks = full.chunks_embedded
    return [
        Figure(
            "full build", round(full.seconds, 1), "s", f"{DOCUMENTS} documents, {chunks} chunks"
        ),
        Figure(
            "incremental sync (1 document edited)",
            round(incremental.seconds, 2),
            "s",
            f"{incremental.chunks_embedded} chunk(s) embedded, {incremental.chunks_reused} reused",
        ),
        Figure(
            "incremental / full",
            round(100 * incremental.seconds / full.seconds, 2),
            "%",
            "target <= 5%",
        ),
    ]


def _throughput() -> list[Figure]:
    """Median of REPEATS fresh full syncs against the median of REPEATS plain encodes,
    interleaved so that a slow spell of the machine hits both."""
    syncs, plains = [], []
    with TemporaryDirectory() as scratch:
        for repeat in range(REPEATS):
            bot = _corpus_bot(Path(scratch) / str(repeat), THROUGHPUT_DOCUMENTS)
            embedder = _warm_embedder(bot)
            texts = _chunk_texts(bot)
            full = sync_index(bot, embedder)
            assert full.chunks_embedded == len(texts), (full.chunks_embedded, len(texts))
            syncs.append(full.seconds)
            started = time.perf_counter()
            embedder.model.encode(texts)  # the baseline: plain sentence-transformers
            plains.append(time.perf_counter() - started)
    ours, plain = statistics.median(syncs), statistics.median(plains)
    note = f"{len(texts)} chunks of {THROUGHPUT_DOCUMENTS} documents, median of {REPEATS}"
    return [
        Figure("full sync throughput", round(len(texts) / ours, 1), "chunks/s", note),
        Figure("plain encode throughput", round(len(texts) / plain, 1), "chunks/s", note),
        Figure(
            "full sync vs plain encode",
            round(plain / ours, 3),
            "x",
            "end to end (load, chunk, embed, store, FAISS, publish) vs encode alone; "
            "target >= 0.95",
        ),
    ]


def _corpus_bot(scratch: Path, documents: int) -> Bot:
    bot = init_bot(scratch / "bot")
    for file in bot.docs_dir.iterdir():
        file.unlink()
    write_corpus(bot.docs_dir, documents)
    return Bot.open(bot.root)


def _warm_embedder(bot: Bot) -> SentenceTransformerEmbedder:
    embedder = embedder_for_bot(bot)
    assert isinstance(embedder, SentenceTransformerEmbedder), embedder.name
    embedder.embed(["warm up"])
    return embedder


def _chunk_texts(bot: Bot) -> list[str]:
    settings = bot.config.index
    return [
        embedding_text(chunk)
        for document in load_documents(bot.docs_dir).documents
        for chunk in chunk_document(
            document, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
        )
    ]
