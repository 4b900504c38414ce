"""What a hostile web page, a careless client and a broken server see: cross-site and
foreign-host requests are refused, out-of-range values are 4xx naming the field, and a
fault of the server is a 5xx that says nothing of its internals."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import openai
import pytest
from support import make_bot, serving, synced_bot

from hybrid.keys import KeyStore
from server.app import create_app

CHAT = {"model": "", "messages": [{"role": "user", "content": "How do I return an item?"}]}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    return synced_bot(tmp_path_factory.mktemp("hardening") / "bot", base=str(tiny_model_dir))


@pytest.fixture(scope="module")
def chat(url: str) -> dict:
    base = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
    return {**CHAT, "model": base, "max_tokens": 8}


def error_of(response: httpx.Response) -> dict:
    return response.json()["error"]


def test_a_web_page_cannot_change_a_keyless_loopback_server(url: str, chat: dict) -> None:
    evil = {"Origin": "http://evil.example"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    plain = {"Content-Type": "text/plain"}
    # What a cross-site <form> or a no-preflight fetch() can send.
    assert httpx.post(f"{url}/v1/index/sync", headers=evil | form, content="a=b").status_code == 403
    refused = httpx.post(f"{url}/v1/chat/completions", headers=evil | plain, json=chat)
    assert refused.status_code == 403 and error_of(refused)["param"] == "Origin"
    cross_site = {"Sec-Fetch-Site": "cross-site", **plain}
    assert httpx.post(f"{url}/v1/index/sync", headers=cross_site).status_code == 403
    # Without an Origin, a body that is not JSON is still refused...
    as_text = httpx.post(f"{url}/v1/search", headers=plain, content='{"query": "returns"}')
    assert as_text.status_code == 415 and error_of(as_text)["code"] == "unsupported_media_type"
    upload = httpx.post(f"{url}/v1/files", json={"purpose": "fine-tune"})
    assert upload.status_code == 415, "the files route takes multipart only"
    # ...and the same requests from the server's own page or a plain client work.
    own = {"Origin": url}
    assert httpx.post(f"{url}/v1/chat/completions", headers=own, json=chat).status_code == 200
    assert httpx.post(f"{url}/v1/index/sync", timeout=60).status_code == 200


def test_dns_rebinding_is_refused_by_the_host_check(url: str) -> None:
    port = url.rsplit(":", 1)[1]
    rebound = httpx.get(f"{url}/v1/models", headers={"Host": f"evil.example:{port}"})
    assert rebound.status_code == 400 and error_of(rebound)["param"] == "Host"
    for name in ("localhost", "127.0.0.1", "[::1]"):
        named = httpx.get(f"{url}/v1/models", headers={"Host": f"{name}:{port}"})
        assert named.status_code == 200, name


def test_out_of_range_values_are_4xx_naming_the_field(url: str, chat: dict) -> None:
    def refused(method: str, path: str, **kwargs: object) -> dict:
        response = httpx.request(method, url + path, timeout=60, **kwargs)  # type: ignore[arg-type]
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        return error_of(response)

    huge = 2**63
    assert refused("POST", "/v1/adapters/x/promote", json={"version": huge})["param"] == "version"
    model = refused("POST", "/v1/chat/completions", json={**chat, "model": f"x@{huge}0"})
    assert model["param"] == "model" and model["code"] == "model_not_found"
    job = {"model": chat["model"], "training_file": "file-x", "seed": 2**64}
    assert refused("POST", "/v1/fine_tuning/jobs", json=job)["param"] == "seed"
    long_answer = refused("POST", "/v1/chat/completions", json={**chat, "max_tokens": 10**6})
    assert long_answer["param"] == "max_tokens"
    nested = refused(
        "POST", "/v1/search", content="[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert "nests too deeply" in nested["message"]
    long_id = refused("PUT", "/v1/documents/" + "a" * 300, json={"title": "T", "text": "x"})
    assert long_id["param"] == "document_id"


def test_a_vanishing_temperature_decodes_greedily_instead_of_noise(url: str, chat: dict) -> None:
    def answer(temperature: float) -> str:
        body = {**chat, "temperature": temperature, "max_tokens": 12}
        reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()["choices"][0]["message"]["content"]

    assert answer(1e-300) == answer(0.0)


def test_a_fault_of_the_server_is_a_5xx_that_leaks_nothing(bot, url: str) -> None:
    put = httpx.put(f"{url}/v1/documents/pets", json={"title": "Pets", "text": "Dogs welcome."})
    assert put.status_code == 200, put.text
    folder = bot.state_dir / "indexes" / str(put.json()["sync"]["version"])
    saved = bot.state_dir / "saved-index"
    shutil.copytree(folder, saved)
    try:
        for file in folder.iterdir():
            file.write_bytes(b"not an index")
        broken = httpx.post(f"{url}/v1/search", json={"query": "dogs"})
        assert broken.status_code == 500
        message = error_of(broken)["message"]
        assert "incident" in message
        assert str(bot.root) not in message and "unreadable" not in message
        assert error_of(broken)["type"] == "server_error"
    finally:
        shutil.rmtree(folder)
        shutil.copytree(saved, folder)
    assert httpx.post(f"{url}/v1/search", json={"query": "dogs"}).status_code == 200


def test_a_rejected_upload_names_the_clients_file_not_the_servers_path(url: str) -> None:
    bad = httpx.post(
        f"{url}/v1/files",
        files={"file": ("mine.jsonl", b'{"messages": 3}\n')},
        data={"purpose": "fine-tune"},
    )
    assert bad.status_code == 400
    message = error_of(bad)["message"]
    assert "mine.jsonl:1" in message and "/tmp" not in message and "/.hybrid" not in message
    lone_surrogate = b'{"prompt": "a\\ud800", "completion": "b"}\n'
    refused = httpx.post(
        f"{url}/v1/files",
        files={"file": ("lone.jsonl", lone_surrogate)},
        data={"purpose": "fine-tune"},
    )
    assert refused.status_code == 400 and "lone.jsonl:1" in error_of(refused)["message"]


def test_revoking_the_last_key_keeps_the_bot_closed_until_it_is_opened(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = make_bot(tmp_path / "bot", base=str(tiny_model_dir))
    with serving(create_app(bot)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0)
        assert client.models.list().data, "a bot that never had a key is open on loopback"
        with KeyStore(bot.database) as keys:
            record, _ = keys.create("admin")
            keys.revoke(record.id)
        with pytest.raises(openai.AuthenticationError):
            client.models.list()
        with KeyStore(bot.database) as keys:
            keys.open()
        assert client.models.list().data


def test_a_server_off_loopback_never_answers_without_a_key(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = make_bot(tmp_path / "bot", base=str(tiny_model_dir))
    # Listening on every address (the test still connects through loopback).
    with serving(create_app(bot, host="0.0.0.0")) as url:
        assert httpx.get(f"{url}/v1/models").status_code == 401
        with KeyStore(bot.database) as keys:
            _, key = keys.create("chat")
        authorised = {"Authorization": f"Bearer {key}"}
        assert httpx.get(f"{url}/v1/models", headers=authorised).status_code == 200
