"""The server with the official `openai` client, on a real loopback port: chat plain and
streaming with citations and usage, the model list, and errors raised as the SDK's own
exceptions."""

from __future__ import annotations

import concurrent.futures
import random
from pathlib import Path

import httpx
import msgspec
import openai
import pytest
from support import make_bot

from hybrid import Bot
from indexes import embedder_for_bot, sync_index
from training import AdapterRegistry, TrainRequest, train_adapter


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    bot = make_bot(
        tmp_path_factory.mktemp("http") / "bot", base=str(tiny_model_dir), learning_rate=0.05
    )
    sync_index(bot, embedder_for_bot(bot))
    for name, seed in (("style", 0), ("terse", 1)):
        training = msgspec.structs.replace(bot.config.training, seed=seed)
        seeded = Bot(bot.root, msgspec.structs.replace(bot.config, training=training))
        train_adapter(seeded, TrainRequest(bot.data_dir / "train.jsonl", name=name, max_steps=3))
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("style", 1)
    return bot


def test_a_plain_chat_answers_with_citations_and_usage(bot, client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=bot.config.models.base,
        messages=[{"role": "user", "content": "How long do I have to return an item?"}],
        max_tokens=8,
    )
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    usage = completion.usage
    assert usage.prompt_tokens > 20 and 1 <= usage.completion_tokens <= 8
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    citations = completion.model_extra["citations"]
    assert citations and citations[0]["index"] == 1
    assert {"document_id", "chunk_id", "title", "text"} <= set(citations[0])
    assert completion.id.startswith("chatcmpl-")


def test_streaming_sends_deltas_then_usage_then_done(bot, client: openai.OpenAI, url) -> None:
    request = {
        "model": "style",
        "messages": [{"role": "user", "content": "Do you ship to Canada?"}],
        "max_tokens": 8,
    }
    plain = client.chat.completions.create(**request)
    chunks = list(
        client.chat.completions.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == plain.choices[0].message.content, "the same greedy answer"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].model_extra["citations"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens >= 1
    raw = httpx.post(f"{url}/v1/chat/completions", json={**request, "stream": True}).text
    assert raw.rstrip().endswith("data: [DONE]")


def test_models_lists_the_base_and_each_adapter(bot, client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == [bot.config.models.base, "style", "style@1", "terse@1"]


def test_errors_raise_the_sdks_own_exceptions(bot, client: openai.OpenAI, url: str) -> None:
    question = [{"role": "user", "content": "Hi"}]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="nope", messages=question)
    assert missing.value.body["code"] == "model_not_found"
    assert missing.value.body["param"] == "model"
    with pytest.raises(openai.UnprocessableEntityError) as invalid:
        client.chat.completions.create(model="style", messages=question, temperature=5)
    assert "temperature" in invalid.value.message
    with pytest.raises(openai.BadRequestError, match="end with a user message"):
        client.chat.completions.create(
            model="style", messages=[{"role": "assistant", "content": "Hello"}]
        )
    # A stream is refused before it starts: a plain JSON error, not an event stream.
    refused = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": "nope", "messages": question, "stream": True},
    )
    assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found"
    for method, path, status in (("GET", "/v1/nothing", 404), ("GET", "/v1/chat/completions", 405)):
        response = httpx.request(method, f"{url}{path}")
        error = response.json()["error"]
        assert response.status_code == status
        assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
        assert error["message"] and "code" in error and "param" in error


def test_feedback_is_tied_to_a_logged_answer(bot, client: openai.OpenAI, url: str) -> None:
    import sqlite3

    completion = client.chat.completions.create(
        model="style", messages=[{"role": "user", "content": "Do gift cards expire?"}], max_tokens=4
    )
    given = httpx.post(
        f"{url}/v1/feedback",
        json={
            "completion_id": completion.id,
            "rating": 2,
            "corrected_answer": "They never expire.",
        },
    )
    assert given.status_code == 201 and given.json()["completion_id"] == completion.id
    row = (
        sqlite3.connect(bot.database)
        .execute(
            "SELECT i.question, i.adapter, f.rating, f.corrected_answer FROM feedback f "
            "JOIN interactions i ON i.id = f.interaction_id WHERE i.id = ?",
            [completion.id],
        )
        .fetchone()
    )
    assert row == ("Do gift cards expire?", "style@1", 2, "They never expire.")
    unknown = httpx.post(f"{url}/v1/feedback", json={"completion_id": "chatcmpl-x", "rating": 3})
    assert unknown.status_code == 404 and unknown.json()["error"]["param"] == "completion_id"
    out_of_range = httpx.post(
        f"{url}/v1/feedback", json={"completion_id": completion.id, "rating": 9}
    )
    assert out_of_range.status_code == 422 and out_of_range.json()["error"]["param"] == "rating"


def test_search_returns_the_chunks_the_assistant_would_get(url: str) -> None:
    response = httpx.post(f"{url}/v1/search", json={"query": "return window refund", "k": 2})
    hits = response.json()["data"]
    assert response.status_code == 200 and len(hits) == 2
    assert hits[0]["document_id"] == "returns" and hits[0]["score"] >= hits[1]["score"]


def test_metrics_count_requests_tokens_and_show_the_state(client: openai.OpenAI, url: str) -> None:
    client.chat.completions.create(
        model="style", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
    )
    text = httpx.get(f"{url}/metrics").text
    counted = [
        line
        for line in text.splitlines()
        if line.startswith("hybrid_requests_total")
        and 'route="/v1/chat/completions"' in line
        and 'status="200"' in line
    ]
    assert counted and int(counted[0].rsplit(" ", 1)[1]) >= 1
    assert 'hybrid_request_seconds_bucket{route="/v1/chat/completions",le="+Inf"}' in text
    completion = next(line for line in text.splitlines() if 'kind="completion"' in line)
    assert int(completion.rsplit(" ", 1)[1]) >= 1
    building = next(line for line in text.splitlines() if "prompt_building_seconds_count" in line)
    assert int(building.rsplit(" ", 1)[1]) >= 1
    assert "hybrid_index_version 1" in text and "hybrid_queue_depth 0" in text
    assert 'hybrid_active_adapter{adapter="style@1"} 1' in text


def test_32_concurrent_streaming_clients_across_adapters_get_their_own_answers(
    bot, client: openai.OpenAI
) -> None:
    models = [bot.config.models.base, "style", "terse@1"]
    questions = ["Do you ship to Canada?", "Do gift cards expire?", "How do repairs work?",
                 "Can I return a tent?"]  # fmt: skip
    requests = [(models[i % 3], questions[i % 4]) for i in range(32)]
    expected = {
        key: client.chat.completions.create(
            model=key[0], messages=[{"role": "user", "content": key[1]}], max_tokens=6
        )
        .choices[0]
        .message.content
        for key in set(requests)
    }
    assert len(set(expected.values())) > 4, "models and questions give different answers"

    def streamed(key: tuple[str, str]) -> str:
        chunks = client.chat.completions.create(
            model=key[0], messages=[{"role": "user", "content": key[1]}], max_tokens=6,
            stream=True,
        )  # fmt: skip
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()

    random.Random(0).shuffle(requests)
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(streamed, requests))
    assert answers == [expected[key] for key in requests]


def test_promotion_and_rollback_over_http_switch_what_a_name_answers_with(
    client: openai.OpenAI, url: str
) -> None:
    def answered_by() -> str:
        completion = client.chat.completions.create(
            model="terse", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
        return completion.model

    with pytest.raises(openai.NotFoundError):
        answered_by()  # terse has no active version yet
    promoted = httpx.post(f"{url}/v1/adapters/terse/promote", json={"version": 1}).json()
    assert (promoted["id"], promoted["status"]) == ("terse@1", "active")
    assert answered_by() == "terse@1", "the response names the version that answered"
    listed = {a["id"]: a["status"] for a in httpx.get(f"{url}/v1/adapters").json()["data"]}
    assert listed == {"style@1": "active", "terse@1": "active"}
    nothing = httpx.post(f"{url}/v1/adapters/terse/rollback")
    assert nothing.status_code == 409 and "no earlier active version" in nothing.text
    unknown = httpx.post(f"{url}/v1/adapters/nope/promote")
    assert unknown.status_code == 404
