"""kill -9 during a sync loses nothing, and searches never see a half-built version."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support import edit, make_bot

from hybrid import Bot
from indexes import HybridRetriever, check_index, embedder_for_bot, index_status, sync_index

KILL_SYNC = Path(__file__).with_name("kill_sync.py")
QUERY = "return window days of delivery"


def search_top(bot: Bot) -> str:
    return HybridRetriever.for_bot(bot, embedder_for_bot(bot)).search(QUERY, 1)[0].text


def prepared_bot(folder: Path) -> Bot:
    """A published version 1, then a pending change big enough for several batches:
    new chunk sizes (every document re-chunked) and an edited return window."""
    bot = make_bot(folder, chunk_tokens=16, chunk_overlap=4, embed_batch_size=32)
    sync_index(bot, embedder_for_bot(bot))
    edit(bot.config_file, "chunk_tokens = 16", "chunk_tokens = 20")
    edit(bot.docs_dir / "returns.md", "45 days of delivery", "30 days of delivery")
    return Bot.open(bot.root)


@pytest.mark.parametrize(
    ("kill_point", "call", "published_after_kill"),
    [
        ("indexes.store:IndexStore.add_revisions", 2, 1),  # one batch committed, more to go
        ("indexes.store:IndexStore.copy_documents", 1, 1),  # all new rows stored
        ("indexes.vector_index:write_version", 1, 1),  # before the FAISS files
        ("hybrid.staging:os.replace", 1, 1),  # FAISS files staged, not yet renamed
        ("indexes.store:IndexStore.publish", 1, 1),  # folder in place, pointer not switched
        ("indexes.sync:prune", 1, 2),  # published, old versions not yet pruned
    ],
)
def test_a_kill_9_leaves_the_published_version_answering(
    tmp_path: Path, kill_point: str, call: int, published_after_kill: int
) -> None:
    bot = prepared_bot(tmp_path / "bot")
    killed = subprocess.run(
        [sys.executable, str(KILL_SYNC), str(bot.root), kill_point, str(call)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -9, killed.stderr
    assert index_status(bot)["published"] == published_after_kill
    expected = "45 days" if published_after_kill == 1 else "30 days"
    assert expected in search_top(bot), "the published version still answers"
    assert check_index(bot).ok

    summary = sync_index(bot, embedder_for_bot(bot))
    assert check_index(bot).ok
    assert index_status(bot)["unfinished"] == []
    assert "30 days" in search_top(bot)
    if published_after_kill == 1:
        assert summary.published and summary.updated
    leftovers = [p.name for p in bot.indexes_dir.iterdir() if not p.name.isdigit()]
    assert leftovers == []


def test_searches_during_syncs_all_succeed_on_a_whole_version(tmp_path: Path) -> None:
    bot = prepared_bot(tmp_path / "bot")
    retriever = HybridRetriever.for_bot(bot, embedder_for_bot(bot))
    seen: list[str] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def search_until_done() -> None:
        while not done.is_set():
            try:
                hits = retriever.search(QUERY, 3)
                assert len(hits) == 3
                seen.append(hits[0].text)
            except BaseException as exc:  # collected and reported by the main thread
                errors.append(exc)
                return

    searchers = [threading.Thread(target=search_until_done) for _ in range(3)]
    for thread in searchers:
        thread.start()
    try:
        sync_index(bot, embedder_for_bot(bot))
        for days in ("29", "28"):
            edit(bot.docs_dir / "returns.md", f"{int(days) + 1} days of", f"{days} days of")
            sync_index(bot, embedder_for_bot(bot))
    finally:
        done.set()
        for thread in searchers:
            thread.join()
    assert errors == []
    assert len(seen) > 10
    assert "28 days" in search_top(bot)
