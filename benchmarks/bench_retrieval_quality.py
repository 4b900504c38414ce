"""Retrieval quality on the sample bot's golden set: recall@5 and MRR (by document) of
dense-only, lexical-only and fused retrieval, with the embedded all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from benchmarks.common import Figure
from hybrid.bot import init_bot
from indexes import HybridRetriever, embedder_for_bot, sync_index

K = 5


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        embedder = embedder_for_bot(bot)
        sync_index(bot, embedder)
        retriever = HybridRetriever.for_bot(bot, embedder)
        golden = [json.loads(line) for line in (bot.data_dir / "golden.jsonl").open()]
        figures = []
        for mode in ("dense", "lexical", "hybrid"):
            recall, reciprocal = 0.0, 0.0
            for case in golden:
                ranked = [
                    hit.document_id for hit in retriever.search(case["question"], K, mode=mode)
                ]
                if case["doc_id"] in ranked:
                    recall += 1
                    reciprocal += 1 / (ranked.index(case["doc_id"]) + 1)
            n = len(golden)
            note = f"{n} golden questions, top {K} chunks"
            figures += [
                Figure(f"{mode} recall@{K}", round(recall / n, 3), "", note),
                Figure(f"{mode} MRR", round(reciprocal / n, 3), "", note),
            ]
    return figures
