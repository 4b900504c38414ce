"""`hybrid data export --from-logs`: the log of real answers (a real sqlite file) and a
real index become a curated, immutable dataset snapshot; every rule is counted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from support import edit, log_answer, synced_bot
from typer.testing import CliRunner

from hybrid.cli.app import app
from hybrid.types import AdapterRef, Message
from indexes import HybridRetriever, embedder_for_bot, sync_index
from server.flywheel.curation import ExportRequest, export_from_logs
from server.interactions import InteractionLog

SIGN_OFF = "Happy trails! – Kestrel Support"


def styled(text: str, policy: str = "Returns & Refunds Policy") -> str:
    return f"Hi there! {text}\nPolicy: {policy}\n{SIGN_OFF}"


@pytest.fixture()
def logged(tmp_path: Path):
    """A synced sample bot whose log holds one answer per rule, and the ids by case."""
    bot = synced_bot(tmp_path / "bot")
    retriever = HybridRetriever.for_bot(bot, embedder_for_bot(bot))
    log = InteractionLog(bot.database)
    ids: dict[str, str] = {}

    def answer(case: str, question: str, text: str, **feedback) -> None:
        ids[case] = log_answer(log, retriever, question, text, **feedback)

    answer(
        "kept",
        "Is there a fee for returning by mail? Mail me at ann@example.com",
        styled("Domestic return labels are free."),
        rating=5,
    )
    answer(
        "corrected",
        "How do I send a return back?",
        styled("Just throw it away."),
        rating=1,
        correction=styled("Start a return under Orders in your account."),
        history=(Message("user", "hello"), Message("assistant", "Hi there!")),
    )
    answer("low", "Can I get store credit?", styled("Maybe."), rating=2)
    answer("unrated", "Do you ship to Canada?", styled("Yes."))
    answer("error", "What about tents?", "", rating=5, error="the model failed")
    answer("cut", "Tell me about warranty", "Hi there! The warr", rating=5, finish="length")
    answer(
        "invented",
        "How long do I have to send an item back?",
        styled("You have 90 days to return it."),
        rating=5,
    )
    answer("format", "Are return labels free?", "Return labels are free.", rating=5)
    tags = styled("Unused, with tags.")
    answer("golden", "How long do I have to return an item?", tags, rating=5)
    answer("older twin", "Can I return worn boots?", styled("Only if defective."), rating=4)
    answer(
        "newer twin",
        "Can I return worn boots??",
        styled("Only if they are defective."),
        rating=5,
        adapter="kestrel@2",
    )
    answer(
        "stale",
        "What are the shipping options?",
        styled("Standard shipping.", "Shipping"),
        rating=5,
        adapter="other@1",
    )
    answer("unreadable", "Where are you?", styled("Here."), rating=5)
    answer("excluded", "Can I pay with a gift card?", styled("Yes, at checkout."), rating=5)
    log.exclude(ids["excluded"])  # a reviewer's call, in the admin console
    log.close()
    with sqlite3.connect(bot.database) as db:
        db.execute("UPDATE interactions SET messages = '{oops' WHERE id = ?", [ids["unreadable"]])
    # The shipping policy changes: the chunks that answer cited are no longer published.
    edit(bot.docs_dir / "shipping.md", "Standard", "Economy")
    sync_index(bot, embedder_for_bot(bot))
    return bot, ids


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_export_keeps_good_and_corrected_answers_in_their_serving_prompt(logged) -> None:
    bot, ids = logged
    result = export_from_logs(bot, ExportRequest())
    assert result.snapshot is not None
    manifest = result.snapshot.manifest
    assert manifest["interaction_ids"] == [ids["kept"], ids["corrected"], ids["newer twin"]]
    assert result.removed == {
        "unreadable": 1,
        "excluded": 1,
        "error": 1,
        "cut_off": 1,
        "not_rated": 1,
        "low_rating": 1,
        "sources_not_logged": 0,
        "invented_figure": 1,
        "broken_format": 1,
        "stale_sources": 1,
        "in_golden_set": 1,
        "duplicate": 1,
    }
    assert result.considered == 14 and result.kept == 3 and result.redacted == 1
    (unreadable,) = result.unreadable
    assert unreadable.startswith(f"{ids['unreadable']}: unreadable row (JSONDecodeError")
    assert manifest["removed"] == result.removed

    kept, corrected, twin = lines(result.snapshot.data_file)
    system, user, reply = kept["messages"]
    assert system["role"] == "system" and system["content"].startswith(bot.config.bot.system_prompt)
    assert '<source id="1"' in user["content"], "served with its sources"
    assert user["content"].endswith(
        "Question: Is there a fee for returning by mail? Mail me at [EMAIL]"
    ), "personal data is redacted"
    assert reply == {"role": "assistant", "content": styled("Domestic return labels are free.")}
    assert corrected["messages"][-1]["content"] == styled(
        "Start a return under Orders in your account."
    ), "the correction replaces the answer and wins over its rating of 1"
    roles = [m["role"] for m in corrected["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant"], "history is kept"
    assert twin["messages"][-1]["content"] == styled("Only if they are defective."), "the newest"


def test_export_filters_and_snapshots_are_immutable(logged) -> None:
    bot, ids = logged
    first = export_from_logs(bot, ExportRequest())
    again = export_from_logs(bot, ExportRequest())
    assert first.snapshot and again.snapshot
    assert again.snapshot.id == first.snapshot.id
    assert again.snapshot.manifest["created_at"] == first.snapshot.manifest["created_at"]

    only_v2 = export_from_logs(bot, ExportRequest(adapter=AdapterRef("kestrel", 2)))
    assert only_v2.considered == 1 + 1  # its answer, and the unreadable row (counted, not lost)
    assert only_v2.snapshot and only_v2.snapshot.manifest["interaction_ids"] == [ids["newer twin"]]
    assert only_v2.snapshot.id != first.snapshot.id

    lenient = export_from_logs(bot, ExportRequest(min_rating=2))
    assert ids["low"] in lenient.snapshot.manifest["interaction_ids"]

    future = export_from_logs(bot, ExportRequest(since=4_000_000_000.0))
    assert future.snapshot is None and future.considered == 0


def test_export_command_writes_the_file_and_counts(logged, tmp_path: Path) -> None:
    bot, _ = logged
    runner = CliRunner()
    out = tmp_path / "from-logs.jsonl"
    result = runner.invoke(
        app, ["-C", str(bot.root), "data", "export", "--from-logs", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kept"] == 3 and report["removed"]["stale_sources"] == 1
    assert out.read_bytes() == Path(report["path"]).read_bytes()

    empty = tmp_path / "empty.jsonl"
    result = runner.invoke(
        app,
        ["-C", str(bot.root), "data", "export", "--from-logs", str(empty), "--since", "2100-01-01"],
    )
    assert result.exit_code == 1 and "No answer passed" in result.output
    assert not empty.exists()

    result = runner.invoke(
        app, ["-C", str(bot.root), "data", "export", "--from-logs", str(empty), "--since", "May"]
    )
    assert result.exit_code == 2 and "ISO 8601" in result.output
