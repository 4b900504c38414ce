"""`sync_index`: incremental, versioned, atomic. Real sqlite, real FAISS, hashing embedder."""

from __future__ import annotations

import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
from support import edit, make_bot

from hybrid import Bot, HybridError
from indexes import (
    HybridRetriever,
    check_index,
    embedder_for_bot,
    index_status,
    index_versions,
    rollback_index,
    sync_index,
)
from indexes.store import IndexStore
from indexes.vector_index import VectorIndex


class CountingEmbedder:
    """The bot's embedder, counting the texts it is asked to embed."""

    def __init__(self, bot: Bot) -> None:
        self.inner = embedder_for_bot(bot)
        self.name, self.dimension = self.inner.name, self.inner.dimension
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts += texts
        return self.inner.embed(texts)


def published_vector_index(bot: Bot) -> VectorIndex:
    return VectorIndex.load(bot.indexes_dir / str(index_status(bot)["published"]))


def top_text(bot: Bot, query: str) -> str:
    return HybridRetriever.for_bot(bot, embedder_for_bot(bot)).search(query, 1)[0].text


@pytest.fixture
def bot(tmp_path: Path) -> Bot:
    bot = make_bot(tmp_path / "bot")
    sync_index(bot, embedder_for_bot(bot))
    return bot


def test_the_first_sync_indexes_every_document_and_a_repeat_does_nothing(bot: Bot) -> None:
    assert check_index(bot).ok
    (first,) = index_versions(bot)
    assert first["document_count"] == 17 and first["chunk_count"] > 17
    embedder = CountingEmbedder(bot)
    again = sync_index(bot, embedder)
    assert (again.published, again.version, again.unchanged) == (False, 1, 17)
    assert embedder.texts == [] and len(index_versions(bot)) == 1


def test_an_edit_embeds_only_the_changed_chunk_and_is_searchable(bot: Bot) -> None:
    edit(
        bot.docs_dir / "returns.md",
        "within **45 days of delivery**",
        "within **30 days of delivery**",
    )
    embedder = CountingEmbedder(bot)
    summary = sync_index(bot, embedder)
    assert (summary.published, summary.version, summary.updated) == (True, 2, ["returns"])
    assert summary.chunks_embedded == 1 and len(embedder.texts) == 1
    assert "30 days of delivery" in embedder.texts[0]
    assert summary.chunks_reused >= 3  # the document's other chunks came from the cache
    assert "30 days of delivery" in top_text(bot, "return window days of delivery")
    assert check_index(bot).ok


def test_a_deleted_document_leaves_faiss_fts_and_the_store(bot: Bot) -> None:
    (bot.docs_dir / "gift-cards.md").unlink()
    summary = sync_index(bot, embedder_for_bot(bot))
    assert summary.deleted == ["gift-cards"]
    retriever = HybridRetriever.for_bot(bot, embedder_for_bot(bot))
    for mode in ("dense", "lexical", "hybrid"):
        hits = retriever.search("gift card balance PIN never expire", 10, mode=mode)
        assert "gift-cards" not in {hit.document_id for hit in hits}, mode
    with IndexStore(bot.database) as store:
        assert "gift-cards" not in store.documents(2)
    assert check_index(bot).ok


def test_a_renamed_or_moved_document_is_not_embedded_again(bot: Bot) -> None:
    (bot.docs_dir / "archive").mkdir()
    shutil.move(bot.docs_dir / "warranty.md", bot.docs_dir / "archive" / "lifetime-warranty.md")
    embedder = CountingEmbedder(bot)
    summary = sync_index(bot, embedder)
    assert (summary.added, summary.deleted) == (["archive/lifetime-warranty"], ["warranty"])
    assert summary.chunks_embedded == 0 and embedder.texts == []
    hit = HybridRetriever.for_bot(bot, embedder.inner).search("lifetime warranty", 1)[0]
    assert hit.source == "archive/lifetime-warranty.md"


def test_a_corrupt_file_is_named_and_what_was_indexed_from_it_is_kept(bot: Bot) -> None:
    (bot.docs_dir / "shipping.md").write_bytes(b"\x00\x01\x02 corrupted by a bad copy")
    (bot.docs_dir / "broken.pdf").write_bytes(b"%PDF-1.7 truncated")
    (bot.docs_dir / "new-policy.md").write_text("# Bike rentals\n\nRent a bike for $25 a day.\n")
    summary = sync_index(bot, embedder_for_bot(bot))
    assert summary.added == ["new-policy"] and summary.deleted == []
    named = sorted(problem.source for problem in summary.problems)
    assert named == ["broken.pdf", "shipping.md"]
    assert "Rent a bike" in top_text(bot, "bike rental price per day")
    assert "shipping" in {hit.document_id for hit in HybridRetriever.for_bot(
        bot, embedder_for_bot(bot)).search("standard shipping cost", 5)}  # fmt: skip


def test_syncing_named_paths_leaves_the_rest_alone(bot: Bot) -> None:
    edit(bot.docs_dir / "returns.md", "45 days", "40 days")
    (bot.docs_dir / "loyalty.md").unlink()
    summary = sync_index(bot, embedder_for_bot(bot), paths=[bot.docs_dir / "returns.md"])
    assert (summary.updated, summary.deleted) == (["returns"], [])
    with pytest.raises(HybridError, match="not inside the docs folder"):
        sync_index(bot, embedder_for_bot(bot), paths=[bot.root / "hybrid.toml"])


def test_rollback_publishes_the_earlier_version_at_once(bot: Bot) -> None:
    edit(
        bot.docs_dir / "returns.md",
        "within **45 days of delivery**",
        "within **30 days of delivery**",
    )
    sync_index(bot, embedder_for_bot(bot))
    query = "return window days of delivery"
    assert "30 days" in top_text(bot, query)
    assert rollback_index(bot) == 1
    assert "45 days" in top_text(bot, query)
    assert check_index(bot).ok
    assert rollback_index(bot, 2) == 2
    assert "30 days" in top_text(bot, query)
    with pytest.raises(HybridError, match="not kept"):
        rollback_index(bot, 99)


def test_only_the_configured_number_of_versions_is_kept(tmp_path: Path) -> None:
    bot = make_bot(tmp_path / "bot", keep_versions=2)
    embedder = embedder_for_bot(bot)
    sync_index(bot, embedder)
    for days in ("44", "43", "42"):
        edit(bot.docs_dir / "returns.md", "45 days" if days == "44" else f"{int(days) + 1} days",
             f"{days} days")  # fmt: skip
        sync_index(bot, embedder)
    assert [row["version"] for row in index_versions(bot)] == [3, 4]
    assert sorted(p.name for p in bot.indexes_dir.iterdir()) == ["3", "4"]
    with IndexStore(bot.database) as store:  # revisions only old versions used are gone
        revisions = store.db.execute("SELECT count(*) FROM documents WHERE id = 'returns'")
        assert revisions.fetchone()[0] == 2
    assert check_index(bot).ok


def test_check_finds_a_faiss_version_that_disagrees_and_rebuild_repairs_it(bot: Bot) -> None:
    folder = bot.indexes_dir / "1"
    index = faiss.read_index(str(folder / "index.faiss"))
    index.remove_ids(np.array([faiss.vector_to_array(index.id_map)[0]], dtype="int64"))
    faiss.write_index(index, str(folder / "index.faiss"))
    report = check_index(bot)
    assert not report.ok
    assert any("missing from FAISS" in problem for problem in report.problems)
    assert "--rebuild" in (report.repair or "")
    embedder = CountingEmbedder(bot)
    repaired = sync_index(bot, embedder, rebuild=True)
    assert repaired.published and embedder.texts == []  # rebuilt from the embedding cache
    assert check_index(bot).ok


def test_changing_the_embedder_rebuilds_the_vectors(bot: Bot) -> None:
    edit(bot.config_file, 'embedder = "hashing"', 'embedder = "hashing:128"')
    bot = Bot.open(bot.root)
    summary = sync_index(bot, embedder_for_bot(bot))
    assert summary.published and summary.chunks_embedded > 17
    assert check_index(bot).ok
    assert HybridRetriever.for_bot(bot, embedder_for_bot(bot)).search("refund", 1)


def test_an_hnsw_index_is_built_from_the_cache_and_answers_like_flat(bot: Bot) -> None:
    query = "return window days of delivery"
    flat_top = top_text(bot, query)
    edit(bot.config_file, 'kind = "auto"', 'kind = "hnsw"')
    bot = Bot.open(bot.root)
    embedder = CountingEmbedder(bot)
    switched = sync_index(bot, embedder)
    assert switched.published and embedder.texts == []  # same vectors, new structure
    assert index_status(bot)["kind"] == "hnsw"
    assert isinstance(
        faiss.downcast_index(published_vector_index(bot).index.index), faiss.IndexHNSWFlat
    )
    assert top_text(bot, query) == flat_top
    edit(bot.docs_dir / "returns.md", "within **45 days", "within **30 days")
    edited = sync_index(bot, embedder)
    assert (edited.chunks_embedded, index_status(bot)["kind"]) == (1, "hnsw")
    assert "30 days" in top_text(bot, query)
    assert check_index(bot).ok


def test_auto_picks_hnsw_from_the_configured_chunk_count(tmp_path: Path) -> None:
    bot = make_bot(tmp_path / "bot", hnsw_min_chunks=10)
    sync_index(bot, embedder_for_bot(bot))
    assert index_status(bot)["kind"] == "hnsw"
    assert check_index(bot).ok
