"""The admin console in a real headless browser (Debian's chromium, driven by
Playwright) against a real server on the sample bot (tiny model): review -> correct ->
the correction is in the next export; promote from the comparison, then roll back;
start and cancel a training job; edit a document and see the next answer's sources
change; roll back an index version; every page loads with no console error and no
failed request, and every action is reachable by keyboard; a chat-scope key cannot
open the console. With HYBRID_SCREENSHOTS=DIR, each screen is saved there as PNG (the
README shows them: `make screenshots`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Page, expect
from support import flywheel_bot, statuses
from typer.testing import CliRunner

from hybrid import Bot
from hybrid.cli.app import app as cli
from hybrid.keys import KeyStore
from server.flywheel.retrain import retrain
from training import TrainRequest, train_adapter

SCREENSHOTS = (
    os.environ.get("HYBRID_SCREENSHOTS") and Path(os.environ["HYBRID_SCREENSHOTS"]).resolve()
)
# A gate no candidate passes (the win rate's interval would have to lie above 1), so
# the candidate is one the operator must confirm to promote.
CLOSED_GATE = {"min_win_rate": 1.0}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Bot:
    """kestrel@1 active, kestrel@2 retrained from the log and rejected by the gate."""
    bot = flywheel_bot(tmp_path_factory.mktemp("console") / "bot", tiny_model_dir, **CLOSED_GATE)
    outcome = retrain(bot)
    assert outcome.status == "rejected", outcome
    return Bot.open(bot.root)


def shoot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def ask(client: openai.OpenAI, question: str, rating: int | None = None) -> str:
    answer = client.chat.completions.create(
        model="kestrel", messages=[{"role": "user", "content": question}], max_tokens=8
    )
    if rating is not None:
        given = httpx.post(
            f"{client.base_url}feedback", json={"completion_id": answer.id, "rating": rating}
        )
        assert given.status_code == 201
    return answer.id


def test_review_correct_and_the_correction_is_exported(
    bot: Bot, url: str, page: Page, client: openai.OpenAI
) -> None:
    bad = ask(client, "Can I return a tent I used once?", rating=1)
    fine = ask(client, "Do you ship to Canada?", rating=5)
    unsure = ask(client, "Do gift cards expire?")
    page.goto(f"{url}/admin")
    tiles = page.locator("dl.tiles")
    # The fixture's 12 answers rated 5, and these three: 1, 5 and none.
    expect(tiles).to_contain_text(re.compile(r"Answers today\s*15\b"))
    expect(tiles).to_contain_text(re.compile(r"Mean rating today\s*4\.71 \(14 rated\)"))
    expect(tiles).to_contain_text("kestrel@2 rejected against kestrel@1")
    page.goto(f"{url}/admin/review")
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("rated 1")  # the worst answer heads the queue
    expect(first.get_by_role("link")).to_have_attribute("href", f"/admin/review/{bad}")
    shoot(page, "review")
    first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Sources it was given")).to_be_visible()
    expect(page.locator(".sources li").first).to_be_visible()
    expect(page.locator("main")).to_contain_text("adapter kestrel@1 · index version 1")
    shoot(page, "review-answer")

    correction = "Hi there! Used tents can be returned within 30 days.\nPolicy: Returns"
    page.get_by_label("The answer it should have given").fill(correction)
    page.get_by_role("button", name="Save correction").click()
    expect(page.locator(".notice")).to_contain_text("Correction saved")
    expect(page.locator(".conversation .correction")).to_contain_text("Used tents")

    page.goto(f"{url}/admin/review/{fine}")
    page.get_by_role("button", name="Exclude").click()
    expect(page.locator(".notice")).to_contain_text("Excluded from training")

    page.goto(f"{url}/admin/review/{unsure}")
    page.get_by_label("Reference answer").fill("Hi there! Gift cards never expire.")
    page.get_by_label("Key facts, one per line").fill("never expire")
    page.get_by_role("button", name="Add to golden set").click()
    expect(page.locator(".notice")).to_contain_text(f"review-{unsure}")
    golden = (bot.root / bot.config.retrain.golden).read_text().splitlines()
    added = json.loads(golden[-1])
    assert added["question"] == "Do gift cards expire?" and added["facts"] == ["never expire"]
    assert page.problems == []  # type: ignore[attr-defined]

    out = bot.root / "export.jsonl"
    result = CliRunner().invoke(
        cli, ["-C", str(bot.root), "data", "export", "--from-logs", str(out), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["removed"]["excluded"] == 1, "the excluded answer is not trained on"
    replies = [json.loads(line)["messages"][-1]["content"] for line in out.read_text().splitlines()]
    assert correction in replies, "the correction is trained on, in place of the answer"


def test_promote_from_the_comparison_after_confirming_then_roll_back(
    bot: Bot, url: str, page: Page, client: openai.OpenAI
) -> None:
    page.goto(f"{url}/admin/adapters")
    expect(page.locator("tbody tr")).to_have_count(2)
    shoot(page, "adapters")
    page.get_by_role("link", name="kestrel@2").click()
    expect(page.locator("main")).to_contain_text("The gate rejected kestrel@2 against kestrel@1")
    expect(page.locator("ul.rules li.failed", has_text="win_rate")).to_have_count(1)
    outcomes = page.locator("table.comparison tbody td:first-child").all_inner_texts()
    order = {"loss": 0, "tie": 1, "win": 2}
    ranks = [order[text.split()[0]] for text in outcomes]
    assert ranks == sorted(ranks), "regressions are listed first"
    expect(page.locator("figure.plot polyline")).to_have_count(2)  # this run over the earlier
    shoot(page, "adapter")

    # The server refuses a promotion the gate rejected unless it was confirmed.
    refused = httpx.post(f"{url}/admin/adapters/kestrel/2/promote", data={})
    assert refused.status_code == 409 and "win_rate" in refused.text
    # Nor does a form on another site get to confirm it.
    forged = httpx.post(f"{url}/admin/adapters/kestrel/2/promote", data={"confirm": "on"},
                        headers={"Origin": "https://elsewhere.example"})  # fmt: skip
    assert forged.status_code == 403
    assert statuses(bot)["kestrel@2"] == "candidate"

    page.get_by_label("I have read the gate's verdict and promote it anyway").check()
    page.get_by_role("button", name="Promote kestrel@2").click()
    expect(page.locator(".notice")).to_contain_text("kestrel@2 is now active")
    assert statuses(bot) == {"kestrel@1": "retired", "kestrel@2": "active"}
    answer = client.chat.completions.create(
        model="kestrel", messages=[{"role": "user", "content": "Hello?"}], max_tokens=4
    )
    assert answer.model == "kestrel@2", "the next request sees the promotion"

    page.get_by_role("button", name="Roll back kestrel").click()
    expect(page.locator(".notice")).to_contain_text("kestrel@1 is active")
    assert statuses(bot)["kestrel@1"] == "active"
    assert page.problems == []  # type: ignore[attr-defined]


def test_start_a_job_follow_its_loss_live_and_cancel_it(bot: Bot, url: str, page: Page) -> None:
    (bot.state_dir / "datasets" / "killed-while-written").mkdir()  # no manifest: not offered
    page.goto(f"{url}/admin/jobs")
    offered = page.get_by_label("…or an exported dataset").locator("option").all_inner_texts()
    snapshots = [
        p for p in (bot.state_dir / "datasets").iterdir() if (p / "manifest.json").is_file()
    ]
    assert len(offered) == 1 + len(snapshots) >= 2, offered  # "(none)" and the retrain's
    page.get_by_label("Training file").set_input_files(str(bot.data_dir / "replay.jsonl"))
    page.get_by_label("Adapter name").fill("trial")
    page.get_by_label("Epochs").fill("100")  # long enough to cancel while it runs
    page.get_by_label("Learning-rate multiplier").fill("0.5")
    shoot(page, "jobs")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator(".notice")).to_contain_text("queued")
    assert "/admin/jobs/ftjob-" in page.url
    # Without reloading, the page's script swaps in the progress as the job runs.
    expect(page.locator("#progress")).to_contain_text(re.compile(r"step \d+ of \d+"))
    expect(page.locator("#progress figure.plot polyline")).to_have_count(1)
    expect(page.locator("main")).to_contain_text("learning-rate multiplier 0.5")
    shoot(page, "job")
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#progress .status")).to_have_text("cancelled")
    assert page.problems == []  # type: ignore[attr-defined]


def test_edit_a_document_see_the_next_answer_then_roll_the_index_back(
    bot: Bot, url: str, page: Page, client: openai.OpenAI
) -> None:
    question = "Within how many days of delivery can I return unused items with tags attached?"

    def cited_text() -> str:
        answer = client.chat.completions.create(
            model="kestrel", messages=[{"role": "user", "content": question}], max_tokens=4
        )
        return " ".join(citation["text"] for citation in answer.model_extra["citations"])

    assert "45 days of delivery" in cited_text()
    page.goto(f"{url}/admin/documents")
    shoot(page, "documents")
    page.get_by_role("link", name="returns", exact=True).click()
    text = page.get_by_label("Text")
    assert "45 days of delivery" in text.input_value()
    text.fill(text.input_value().replace("45 days of delivery", "50 days of delivery"))
    page.get_by_role("button", name="Save and publish").click()
    expect(page.locator(".notice")).to_contain_text("published as index version 2")
    shoot(page, "document")
    cited = cited_text()
    assert "50 days of" in cited and "45 days of" not in cited, "the next answer reads the edit"

    page.goto(f"{url}/admin/index")
    page.get_by_label("From version").select_option("1")
    page.get_by_label("to version").select_option("2")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("dl.changes")).to_contain_text(re.compile(r"Changed\s*returns"))
    shoot(page, "index")
    page.get_by_role("button", name="Publish version 1 again").click()
    expect(page.locator(".notice")).to_contain_text("Index version 1 is published again")
    assert "45 days of delivery" in cited_text(), "the rollback is read by the next answer"
    assert page.problems == []  # type: ignore[attr-defined]


def test_compare_a_version_with_the_active_one_from_its_page(
    bot: Bot, url: str, page: Page
) -> None:
    trained = train_adapter(
        bot, TrainRequest(bot.data_dir / "replay.jsonl", name="kestrel", max_steps=2)
    )
    ref = trained.adapter.ref
    page.goto(f"{url}/admin/adapters/kestrel/{ref.version}")
    expect(page.locator("main")).to_contain_text("No comparison stored")
    page.get_by_role("button", name="Compare with kestrel@1").click()
    expect(page.locator(".notice")).to_contain_text(f"Comparing {ref}")
    expect(page.locator("#progress .status")).to_have_text("succeeded")  # followed live
    expect(page.locator(".events")).to_contain_text("gate: rejected (failed")
    page.goto(f"{url}/admin/adapters/kestrel/{ref.version}")
    expect(page.locator("main")).to_contain_text(f"The gate rejected {ref} against kestrel@1")
    golden = (bot.root / bot.config.retrain.golden).read_text().splitlines()
    expect(page.locator("table.comparison tbody tr")).to_have_count(len(golden))
    assert statuses(bot)[str(ref)] == "candidate", "a comparison promotes nothing"
    assert page.problems == []  # type: ignore[attr-defined]


def test_upload_documents_and_a_refused_file_says_why(bot: Bot, url: str, page: Page) -> None:
    page.goto(f"{url}/admin/documents")
    upload = page.get_by_label("Upload a document")
    upload.set_input_files(
        files=[{"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 junk"}]
    )
    page.get_by_role("button", name="Upload and publish").click()
    expect(page.locator(".problem")).to_contain_text("broken.pdf was not stored")
    assert not (bot.docs_dir / "broken.pdf").exists(), "a refused file is not kept"

    page.goto(f"{url}/admin/documents")
    holidays = b"# Holiday hours\n\nOur stores close at 4 pm on 24 December.\n"
    page.get_by_label("Upload a document").set_input_files(
        files=[{"name": "holidays.md", "mimeType": "text/markdown", "buffer": holidays}]
    )
    page.get_by_role("button", name="Upload and publish").click()
    expect(page.locator(".notice")).to_contain_text(
        re.compile(r"holidays.md: published as index version \d+")
    )
    expect(page.get_by_role("link", name="holidays", exact=True)).to_be_visible()
    assert (bot.docs_dir / "holidays.md").read_bytes() == holidays


PAGES = ["", "/review", "/adapters", "/adapters/kestrel/2", "/jobs", "/documents",
         "/documents/returns", "/index"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_every_page_loads_cleanly_and_every_action_is_reachable_by_keyboard(
    url: str, page: Page, path: str
) -> None:
    page.goto(f"{url}/admin{path}")
    expect(page.locator("main h1")).to_be_visible()
    if path == "":
        shoot(page, "overview")
    actionable = page.evaluate(
        """() => {
          const all = [...document.querySelectorAll('a[href], button, input, select, textarea')]
            .filter(e => !e.disabled && e.type !== 'hidden' && e.offsetParent !== null);
          all.forEach((e, i) => e.dataset.k = String(i));
          return all.length;
        }"""
    )
    reached: set[str] = set()
    for _ in range(actionable + 5):
        page.keyboard.press("Tab")
        key = page.evaluate("() => document.activeElement && document.activeElement.dataset.k")
        if key is not None:
            reached.add(key)
    assert len(reached) == actionable, f"{actionable - len(reached)} action(s) not reachable"
    assert page.problems == []  # type: ignore[attr-defined]


def test_the_console_needs_an_admin_key_once_the_bot_has_keys(
    bot: Bot, url: str, page: Page
) -> None:
    with KeyStore(bot.database) as keys:
        chat_record, chat_key = keys.create("chat", "web")
        admin_record, admin_key = keys.create("admin", "ops")
    try:
        page.goto(f"{url}/admin/review")
        expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin/review$"))
        shoot(page, "login")
        page.get_by_label("Admin API key").fill(chat_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".problem")).to_contain_text("admin scope")
        page.get_by_label("Admin API key").fill(admin_key)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/admin/review$"))
        expect(page.locator("main h1")).to_have_text("Review")
        chat = httpx.get(f"{url}/admin", headers={"Cookie": f"hybrid_console={chat_key}"})
        assert chat.status_code == 403
    finally:
        with KeyStore(bot.database) as keys:  # open again, for any test that follows
            keys.revoke(chat_record.id)
            keys.revoke(admin_record.id)
            keys.open()
