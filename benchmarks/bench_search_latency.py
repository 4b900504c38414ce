"""Search latency (p50, p99) at 10k and 100k chunks, with and without embedding the query.

The corpora are indexed with the hashing embedder at 384 dimensions, the size of
all-MiniLM-L6-v2's vectors, because embedding 100k chunks with a real model takes most of
an hour on 2 cores; FAISS and FTS5 costs depend on the count and the dimension only. The
"with query embedding" figures embed each query with the real all-MiniLM-L6-v2.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure
from benchmarks.corpus import write_corpus
from hybrid.bot import Bot, init_bot
from hybrid.hardware import Placement
from hybrid.protocols import Embedder
from indexes import HybridRetriever, index_status, load_embedder, sync_index

QUERIES = [
    "can boots be returned after 30 days",
    "refund fee for kayaks in region 12",
    "how long does a tent repair take",
    "shipping cost of stoves",
    "warranty team approval case",
] * 40
CPU = Placement("cpu", "float32")
SETTINGS = {
    'embedder = "embedded:all-minilm-l6-v2"': 'embedder = "hashing:384"',
    "chunk_tokens = 200": "chunk_tokens = 24",
    "chunk_overlap = 40": "chunk_overlap = 4",
}
# Generated documents giving just over 10k and 100k chunks at 24-token chunks.
DOCUMENTS = (235, 2350)


def run() -> list[Figure]:
    real = load_embedder("embedded:all-minilm-l6-v2", base_dir=Path.cwd(), placement=CPU)
    return [figure for documents in DOCUMENTS for figure in _measure(documents, real)]


def _measure(documents: int, real: Embedder) -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        for file in bot.docs_dir.iterdir():
            file.unlink()
        write_corpus(bot.docs_dir, documents, sections=6)
        text = bot.config_file.read_text()
        for old, new in SETTINGS.items():
            text = text.replace(old, new)
        bot.config_file.write_text(text)
        bot = Bot.open(bot.root)
        hashing = load_embedder("hashing:384", base_dir=bot.root, placement=CPU)
        summary = sync_index(bot, hashing)
        count = summary.chunks_embedded + summary.chunks_reused
        retriever = HybridRetriever.for_bot(bot, hashing)
        vectors = hashing.embed(QUERIES)
        bare = _latencies(lambda i: retriever.search(QUERIES[i], 5, query_vector=vectors[i]))
        embedded = _latencies(
            lambda i: retriever.search(QUERIES[i], 5, query_vector=real.embed([QUERIES[i]])[0])
        )
        # Where the time goes: each ranking alone.
        dense = _latencies(
            lambda i: retriever.search(QUERIES[i], 5, mode="dense", query_vector=vectors[i])
        )
        lexical = _latencies(lambda i: retriever.search(QUERIES[i], 5, mode="lexical"))
        kind = index_status(bot)["kind"]
    label = f"{count // 1000}k chunks"
    note = f"{count} chunks, {summary.seconds:.0f} s to index, {kind} index"
    return [
        Figure(f"{label} search p50 (vector given)", bare[0], "ms", note),
        Figure(f"{label} search p99 (vector given)", bare[1], "ms", note),
        Figure(f"{label} search p50 (with query embedding)", embedded[0], "ms", note),
        Figure(f"{label} search p99 (with query embedding)", embedded[1], "ms", note),
        Figure(f"{label} dense only p50", dense[0], "ms", f"p99 {dense[1]} ms"),
        Figure(f"{label} lexical only p50", lexical[0], "ms", f"p99 {lexical[1]} ms"),
    ]


def _latencies(search) -> tuple[float, float]:
    search(0)  # loads the FAISS index
    times = []
    for i in range(len(QUERIES)):
        started = time.perf_counter()
        search(i)
        times.append((time.perf_counter() - started) * 1000)
    p99 = statistics.quantiles(times, n=100)[98]
    return round(statistics.median(times), 2), round(p99, 2)
