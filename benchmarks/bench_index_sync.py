"""Incremental sync against a full rebuild, on a generated corpus of 2,000 documents with
the embedded all-MiniLM-L6-v2; and the embedding throughput of our batched path against a
plain sentence-transformers `encode` of the same chunk texts."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from benchmarks.corpus import edit_one, write_corpus
from hybrid.bot import Bot, init_bot
from indexes import embedder_for_bot, load_documents, sync_index
from indexes.chunking import chunk_document, embedding_text

DOCUMENTS = 2000


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        for file in bot.docs_dir.iterdir():
            file.unlink()
        write_corpus(bot.docs_dir, DOCUMENTS)
        bot = Bot.open(bot.root)
        embedder = embedder_for_bot(bot)
        embedder.embed(["warm up"])

        full = sync_index(bot, embedder)
        edit_one(bot.docs_dir)
        incremental = sync_index(bot, embedder)
        assert incremental.updated == ["doc-000007"], incremental.updated

        texts = _chunk_texts(bot)[:3000]
        started = time.perf_counter()
        embedder.embed(texts)  # our path: the batches sync uses
        ours = time.perf_counter() - started
        started = time.perf_counter()
        embedder.model.encode(texts)  # the baseline: plain sentence-transformers
        plain = time.perf_counter() - started

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
        Figure("embedding throughput", round(len(texts) / ours), "chunks/s", "hybrid's path"),
        Figure(
            "embedding throughput vs plain encode",
            round(plain / ours, 3),
            "x",
            f"plain sentence-transformers encode: {len(texts) / plain:.0f} chunks/s; "
            "target >= 0.95",
        ),
    ]


def _chunk_texts(bot: Bot) -> list[str]:
    settings = bot.config.index
    return [
        embedding_text(chunk)
        for document in load_documents(bot.docs_dir).documents
        for chunk in chunk_document(
            document, max_tokens=settings.chunk_tokens, overlap=settings.chunk_overlap
        )
    ]
