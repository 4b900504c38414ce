"""Retrieval quality on the sample bot's golden set: recall@5 and MRR (by document) of
dense-only, lexical-only and fused retrieval, with the embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks.common import Figure
from hybrid.bot import init_bot
from hybrid.config import RetrievalMode
from indexes import HybridRetriever, embedder_for_bot, sync_index

K = 5


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        embedder = embedder_for_bot(bot)
        sync_index(bot, embedder)
        retriever = HybridRetriever.for_bot(bot, embedder)
        lines = (bot.data_dir / "golden.jsonl").open()
        golden = [case for case in map(json.loads, lines) if case.get("answerable", True)]
        scores = {mode: _score(retriever, golden, mode) for mode in ("dense", "lexical", "hybrid")}
    note = f"{len(golden)} answerable golden questions, top {K} chunks"
    figures = []
    for mode, label in (("dense", "dense"), ("lexical", "lexical"), ("hybrid", "fused")):
        recall, mrr = scores[mode]
        figures += [
            Figure(f"{label} recall@{K}", round(recall, 3), "", note),
            Figure(f"{label} MRR", round(mrr, 3), "", note),
        ]
    for metric, position in ((f"recall@{K}", 0), ("MRR", 1)):
        better = max(scores["dense"][position], scores["lexical"][position])
        ratio = scores["hybrid"][position] / better
        figures.append(
            Figure(f"fused / better single, {metric}", round(ratio, 3), "x", "target >= 1")
        )
    return figures


def _score(
    retriever: HybridRetriever, golden: list[dict[str, str]], mode: RetrievalMode
) -> tuple[float, float]:
    """(recall@K, MRR) by document: a question counts when its document is among the top
    K chunks, at the rank of its first chunk."""
    recall, reciprocal = 0.0, 0.0
    for case in golden:
        ranked = [hit.document_id for hit in retriever.search(case["question"], K, mode=mode)]
        if case["doc_id"] in ranked:
            recall += 1
            reciprocal += 1 / (ranked.index(case["doc_id"]) + 1)
    return recall / len(golden), reciprocal / len(golden)
