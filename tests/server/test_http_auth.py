"""API keys: once a bot has one, requests need a key; admin routes need an admin key;
keys created or revoked while the server runs count at the next request."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest
from support import make_bot, serving

from hybrid.keys import KeyStore
from server.app import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    bot = make_bot(tmp_path_factory.mktemp("auth") / "bot", base=str(tiny_model_dir))
    with serving(create_app(bot)) as url:
        yield bot, url


def chat(url: str, key: str) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    completion = client.chat.completions.create(
        model=client.models.list().data[0].id,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=2,
    )
    return completion.id


def test_without_keys_the_server_is_open_and_with_one_it_is_not(served) -> None:
    bot, url = served
    assert chat(url, "anything")
    with KeyStore(bot.database) as keys:
        _, chat_key = keys.create("chat", "app")
        admin_record, admin_key = keys.create("admin", "ops")
    with pytest.raises(openai.AuthenticationError) as refused:
        chat(url, "hyb-wrong")
    assert refused.value.body["code"] == "invalid_api_key"
    assert httpx.post(f"{url}/v1/search", json={"query": "x"}).status_code == 401
    assert chat(url, chat_key) and chat(url, admin_key)
    assert httpx.get(f"{url}/healthz").status_code == 200, "health needs no key"

    body = {"title": "Pets", "text": "Dogs are welcome."}
    as_chat = httpx.put(
        f"{url}/v1/documents/pets", json=body, headers={"Authorization": f"Bearer {chat_key}"}
    )
    assert as_chat.status_code == 403
    assert as_chat.json()["error"]["type"] == "permission_error"
    for admin_only in ("/metrics", "/v1/fine_tuning/jobs", "/v1/files"):
        as_chat = httpx.get(f"{url}{admin_only}", headers={"Authorization": f"Bearer {chat_key}"})
        assert as_chat.status_code == 403, admin_only
    as_admin = httpx.put(
        f"{url}/v1/documents/pets", json=body,
        headers={"Authorization": f"Bearer {admin_key}"}, timeout=60,
    )  # fmt: skip
    assert as_admin.status_code == 200, as_admin.text

    with KeyStore(bot.database) as keys:
        keys.revoke(admin_record.id)
        stored = [row[0] for row in keys.db.execute("SELECT key_hash FROM api_keys")]
    assert admin_key not in stored and chat_key not in stored, "only hashes are stored"
    with pytest.raises(openai.AuthenticationError):
        chat(url, admin_key)
