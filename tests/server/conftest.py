"""What the HTTP tests share: each module's `bot` (its own fixture) served by uvicorn on
a loopback port, and the official client pointed at it."""

from __future__ import annotations

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
