"""hybrid serving with vLLM generating (`[models] generator = "vllm"`), driven by the
official client over a loopback port: citations, the log and adapters work as with the
local engine; a promotion and a rollback are seen by the next request; vLLM stopping
mid-answer is a clean error, then a 503 with Retry-After that /healthz explains, and
the server answers again once vLLM is back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import httpx
import openai
import pytest
from support import serving
from vllm_support import with_generator

from hybrid import Bot
from server.app import create_app
from server.vllm_command import VllmProcess
from training import TrainRequest, train_adapter

pytestmark = pytest.mark.engines
QUESTION = "How long do I have to return an item?"


@pytest.fixture(scope="module")
def url(engine_bot: Bot, vllm: VllmProcess) -> Iterator[str]:
    with serving(create_app(with_generator(engine_bot, "vllm"))) as url:
        yield url


@pytest.fixture()
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def ask(client: openai.OpenAI, model: str, max_tokens: int = 32, **options):
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=max_tokens,
        **options,
    )


def loaded(vllm: VllmProcess) -> set[str]:
    models = httpx.get(f"{vllm.url}/v1/models", timeout=10).json()["data"]
    return {model["id"] for model in models if model["parent"]}


def test_a_plain_answer_cites_its_sources_and_is_logged(
    client: openai.OpenAI, engine_bot: Bot
) -> None:
    answer = ask(client, "style")
    assert answer.model == "style@1" and answer.choices[0].message.content
    assert answer.citations, "retrieval still runs in hybrid"  # type: ignore[attr-defined]
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    row = (
        sqlite3.connect(engine_bot.database)
        .execute("SELECT adapter, answer FROM interactions WHERE id = ?", (answer.id,))
        .fetchone()
    )
    assert row == ("style@1", answer.choices[0].message.content)


def test_a_streamed_answer_arrives_in_pieces_and_ends_with_its_citations(
    client: openai.OpenAI,
) -> None:
    chunks = list(ask(client, "terse@1", stream=True))
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert chunks[-1].citations  # type: ignore[attr-defined]


def test_each_request_gets_its_own_adapter(client: openai.OpenAI, vllm: VllmProcess) -> None:
    answers = {model: ask(client, model) for model in ("style", "terse@1")}
    assert {model: a.model for model, a in answers.items()} == {
        "style": "style@1",
        "terse@1": "terse@1",
    }
    assert {"style@1", "terse@1"} <= loaded(vllm)


def test_a_promotion_and_a_rollback_are_seen_by_the_next_request(
    client: openai.OpenAI, url: str, engine_bot: Bot, vllm: VllmProcess
) -> None:
    train_adapter(
        engine_bot, TrainRequest(engine_bot.data_dir / "train.jsonl", name="style", max_steps=1)
    )
    httpx.post(f"{url}/v1/adapters/style/promote", json={"version": 2}).raise_for_status()
    served = loaded(vllm)
    assert "style@2" in served, "loaded into vLLM on promotion"
    assert "style@1" not in served, "the retired version is unloaded"
    assert ask(client, "style").model == "style@2"
    httpx.post(f"{url}/v1/adapters/style/rollback").raise_for_status()
    assert "style@1" in loaded(vllm), "loaded again on rollback"
    assert ask(client, "style").model == "style@1"


def test_vllm_stopping_mid_answer_is_a_clean_error_and_the_server_recovers(
    client: openai.OpenAI, url: str, vllm: VllmProcess
) -> None:
    stream = ask(client, "style", stream=True, max_tokens=400)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    vllm.kill()
    with pytest.raises(openai.APIError) as ended:
        for _ in stream:
            pass
    assert "unreachable" in str(ended.value) and "Traceback" not in str(ended.value)

    refused = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "style", "messages": [{"role": "user", "content": QUESTION}]},
    )
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    health = httpx.get(f"{url}/healthz")
    assert health.status_code == 503 and "vLLM" in health.json()["detail"]

    vllm.start()
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert ask(client, "terse@1").model == "terse@1"
