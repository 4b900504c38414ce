"""The hybrid retriever: dense + BM25 fused by reciprocal rank, filters, hit contents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import make_bot

from hybrid import Bot, Retriever
from hybrid.config import RetrievalSettings
from indexes import HybridRetriever, IndexNotReadyError, check_index, embedder_for_bot, sync_index
from indexes.store import IndexStore


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


def test_the_same_files_rank_the_same_whatever_their_edit_history(tmp_path: Path) -> None:
    edited = make_bot(tmp_path / "edited")
    returns = edited.docs_dir / "returns.md"
    original = returns.read_bytes()
    sync_index(edited, embedder_for_bot(edited))
    for change in (b"# Returns\n\nReturn within 7 days, privacy of items aside.\n", None):
        returns.write_bytes(change) if change else returns.unlink()
        sync_index(edited, embedder_for_bot(edited))
    returns.write_bytes(original)
    sync_index(edited, embedder_for_bot(edited))
    fresh = make_bot(tmp_path / "fresh")
    sync_index(fresh, embedder_for_bot(fresh))
    question = "How long do I have to return an item?"
    for mode in ("lexical", "dense", "hybrid"):
        ranked = [
            [(h.chunk_id, round(h.score, 9)) for h in retriever(bot).search(question, 8, mode=mode)]
            for bot in (edited, fresh)
        ]
        assert ranked[0] == ranked[1], mode
    assert check_index(edited).problems == []


def test_check_finds_an_fts_index_that_holds_other_than_the_published_chunks(bot: Bot) -> None:
    with IndexStore(bot.database) as store:
        store.db.execute(
            "INSERT INTO chunks_fts(rowid, text, headings) VALUES (999999, 'stale words', '')"
        )
        store.db.conn.commit()
    problems = check_index(bot).problems
    assert any("outside the published version" in problem for problem in problems)
    sync_index(bot, embedder_for_bot(bot), rebuild=True)
    assert check_index(bot).problems == []


def test_sources_keep_the_sentences_that_answer_in_the_chunks_they_came_from(bot: Bot) -> None:
    question = "How many days do refunds take to reach my card?"
    whole = retriever(bot).sources(question, 3)
    assert whole == retriever(bot).search(question, 3)  # sentences = 0: whole chunks
    focused = retriever(bot, sentences=2).sources(question, 3)
    kept = [line for hit in focused for line in hit.text.splitlines()]
    assert len(kept) == 2 and any("5 to 7 business days" in line for line in kept)
    by_chunk = {hit.chunk_id: hit.text for hit in whole}
    for hit in focused:  # each sentence cites the chunk it was cut from, in its order
        lines = hit.text.splitlines()
        assert all(line in by_chunk[hit.chunk_id] for line in lines)
        assert lines == sorted(lines, key=by_chunk[hit.chunk_id].index)
    order = [hit.chunk_id for hit in whole]
    assert [hit.chunk_id for hit in focused] == sorted(
        (h.chunk_id for h in focused), key=order.index
    )


def test_sentences_split_prose_lists_and_tables_and_leave_headings_out() -> None:
    from indexes.focus import sentences

    text = (
        "## Refunds\n\nRefunds take **5 to 7 business days**. Gift returns get store credit, "
        "e.g. on a new card.\n\n- Items ending in .97 are Final Sale\n- Gift cards\n\n"
        "| Method | Cost |\n| --- | --- |\n| Standard | $6.95 |\n| Expedited | $14.95 |"
    )
    assert sentences(text) == [
        "Refunds take **5 to 7 business days**.",
        "Gift returns get store credit, e.g. on a new card.",
        "- Items ending in .97 are Final Sale",
        "- Gift cards",
        "| Method | Cost |\n| Standard | $6.95 |",  # a row under its header
        "| Method | Cost |\n| Expedited | $14.95 |",
    ]
