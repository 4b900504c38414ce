"""What the HTTP tests share: each module's `bot` (its own fixture) served by uvicorn on
a loopback port, the official client pointed at it, and for the pages, Debian's chromium
driven by Playwright."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from support import serving

from server.app import create_app


@pytest.fixture(scope="module")
def url(bot):
    with serving(create_app(bot)) as url:
        yield url


@pytest.fixture()
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


CHROMIUM = "/usr/bin/chromium"
# Headless, and no background connections: this machine's network is closed.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser) -> Iterator:
    """A fresh browser tab (no cookie, no storage) that records in `page.problems` every
    console error, page error, failed request and 4xx/5xx response."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("requestfailed", lambda r: problems.append(f"{r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.problems = problems
    yield page
    context.close()
