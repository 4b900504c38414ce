"""The web UI at / in a real headless browser (Debian's chromium, driven by Playwright):
a customer asks, watches the answer stream in with its sources, and rates it (saying
what was wrong, if they like), starts a new conversation, on a phone-wide screen too,
and never sees model ids or a key field; the admin mode (/?admin) shows both, and on a
server with keys it says a key is needed and works once one is entered."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import msgspec
import pytest
from playwright.sync_api import Page, expect
from support import make_bot

from hybrid import Bot
from hybrid.keys import KeyStore
from indexes import embedder_for_bot, sync_index
from training import AdapterRegistry, TrainRequest, train_adapter


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    # Short answers: the tiny model's context then holds all the sources too.
    bot = make_bot(
        tmp_path_factory.mktemp("web") / "bot", base=str(tiny_model_dir), max_new_tokens=16
    )
    sync_index(bot, embedder_for_bot(bot))
    training = msgspec.structs.replace(bot.config.training, learning_rate=0.05)
    trained = Bot(bot.root, msgspec.structs.replace(bot.config, training=training))
    train_adapter(trained, TrainRequest(bot.data_dir / "train.jsonl", name="style", max_steps=2))
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("style", 1)
    return bot


def ask(page: Page, question: str):
    page.fill("#question", question)
    page.click("#send")
    answer = page.locator(".assistant").last
    expect(answer.locator(".feedback button")).to_have_count(2)  # the stream has ended
    return answer


def test_a_customer_asks_sees_the_answer_with_its_sources_and_rates_it(
    bot, url: str, page: Page, client
) -> None:
    page.goto(f"{url}/?admin")
    expect(page.locator("#model option")).to_have_text([bot.config.models.base, "style", "style@1"])
    assert page.locator("#model").input_value() == "style", "the active adapter by default"

    page.goto(url)  # as a customer
    expect(page).to_have_title(re.compile(re.escape(bot.config.bot.name)))
    expect(page.locator("#model")).to_be_hidden()
    expect(page.locator("#key")).to_be_hidden()

    question = "How long do I have to return an item?"
    answer = ask(page, question)
    assert answer.locator("span").inner_text().strip(), "the streamed text arrived"
    same = client.chat.completions.create(
        model="style", messages=[{"role": "user", "content": question}]
    )
    cited = same.model_extra["citations"]
    assert cited, "the server cites sources for this question"
    items = answer.locator(".sources li")
    expect(items).to_have_count(len(cited))
    for number, citation in enumerate(cited):
        expect(items.nth(number)).to_contain_text(citation["title"])
        expect(items.nth(number)).to_contain_text(f"({citation['document_id']})")

    answer.get_by_text("Helpful", exact=True).click()
    expect(answer.locator(".feedback")).to_have_text("Thanks for the feedback.")
    with sqlite3.connect(bot.database) as db:
        ratings = db.execute("SELECT rating FROM feedback").fetchall()
    assert ratings == [(5,)]

    follow_up = ask(page, "And for a gift?")
    assert follow_up.locator("span").inner_text().strip()
    assert page.locator(".user").count() == 2, "the conversation goes on in one page"
    follow_up.get_by_text("Not helpful", exact=True).click()
    follow_up.get_by_label("What was wrong? (optional)").fill("It did not mention gift receipts.")
    follow_up.get_by_role("button", name="Send feedback").click()
    expect(follow_up.locator(".feedback")).to_have_text("Thanks for the feedback.")
    with sqlite3.connect(bot.database) as db:
        last = db.execute("SELECT rating, comment FROM feedback ORDER BY id DESC").fetchone()
    assert last == (1, "It did not mention gift receipts.")

    shown = page.locator("body").inner_text()
    assert "style@1" not in shown and bot.config.models.base not in shown, "no model ids"
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".turn")).to_have_count(0)
    ask(page, "Do you ship to Canada?")
    assert page.locator(".user").count() == 1, "the new conversation starts afresh"
    assert page.problems == [], "no console error, no failed request (the favicon included)"


def test_the_page_is_usable_on_a_phone(browser, url: str) -> None:
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    phone.set_default_timeout(60_000)
    phone.goto(url)
    for control in ("#question", "#send", "#new"):
        box = phone.locator(control).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, control
    ask(phone, "How long do I have to return an item?")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width} px wide)"
    phone.close()


def test_with_keys_the_page_asks_for_one_and_works_once_given(bot, url: str, page: Page) -> None:
    with KeyStore(bot.database) as keys:
        _, key = keys.create("chat", "web")
    page.goto(f"{url}/?admin")
    expect(page.locator(".error")).to_contain_text("API key")
    page.fill("#key", key)
    page.press("#key", "Tab")  # the key is taken when the field is left
    expect(page.locator("#model option")).to_have_count(3)
    assert ask(page, "Do you ship to Canada?").locator("span").inner_text().strip()
