"""The hybrid retriever: dense + BM25 fused by reciprocal rank, filters, hit contents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import make_bot

from hybrid import Bot, Retriever
from hybrid.config import RetrievalSettings
from indexes import HybridRetriever, IndexNotReadyError, embedder_for_bot, sync_index


@pytest.fixture
def bot(tmp_path: Path) -> Bot:
    bot = make_bot(tmp_path / "bot")
    (bot.docs_dir / "regional.jsonl").write_text(
        "\n".join(
            json.dumps({"id": f"hours-{region}", "title": f"Store hours ({region})",
                        "text": f"Stores in {region} open at {hour} am.",
                        "metadata": {"region": region}})
            for region, hour in (("us", 9), ("uk", 8), ("eu", 10))
        )
    )  # fmt: skip
    sync_index(bot, embedder_for_bot(bot))
    return bot


def retriever(bot: Bot, **settings) -> HybridRetriever:
    return HybridRetriever(
        bot.database, bot.indexes_dir, embedder_for_bot(bot), RetrievalSettings(**settings)
    )


def test_hits_carry_what_a_citation_needs(bot: Bot) -> None:
    search = retriever(bot)
    assert isinstance(search, Retriever)
    (top,) = search.search("Do gift cards expire?", 1)
    assert (top.document_id, top.title, top.source) == ("gift-cards", "Gift Cards", "gift-cards.md")
    assert top.heading_path[0] == "Gift Cards" and "never expire" in top.text
    assert top.chunk_id and top.score > 0


def test_fusion_is_reciprocal_rank_over_both_rankings(bot: Bot) -> None:
    search = retriever(bot, rrf_k=60)
    query = "price match competitor lower price"
    dense = [h.chunk_id for h in search.search(query, 50, mode="dense")]
    lexical = [h.chunk_id for h in search.search(query, 50, mode="lexical")]
    fused = search.search(query, 5, mode="hybrid")

    def rrf(chunk_id: str) -> float:
        return sum(1 / (60 + r.index(chunk_id) + 1) for r in (dense, lexical) if chunk_id in r)

    assert [h.score for h in fused] == pytest.approx([rrf(h.chunk_id) for h in fused])
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    only_lexical = retriever(bot, dense_weight=0.0).search(query, 5)
    assert [h.chunk_id for h in only_lexical] == lexical[:5]


def test_metadata_filters_keep_only_matching_documents(bot: Bot) -> None:
    search = retriever(bot)
    for mode in ("dense", "lexical", "hybrid"):
        hits = search.search("store opening hours", 5, filters={"region": "uk"}, mode=mode)
        assert [h.document_id for h in hits] == ["hours-uk"], mode
    assert search.search("store opening hours", 5, filters={"region": "mars"}) == []


def test_query_syntax_is_text_not_fts_operators(bot: Bot) -> None:
    hits = retriever(bot).search('refund" AND (* -', 3, mode="lexical")
    assert hits
    assert all("refund" in f"{h.heading_path} {h.text}".lower() for h in hits)
    assert retriever(bot).search("???", 3, mode="lexical") == []


def test_searching_before_any_sync_says_what_to_do(tmp_path: Path) -> None:
    bot = make_bot(tmp_path / "empty")
    with pytest.raises(IndexNotReadyError, match="hybrid index sync"):
        retriever(bot).search("refund", 3)
