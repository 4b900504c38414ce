"""Documents changed through the API while the server runs: the next answer cites the
new text, a deleted document is gone, and files the API must not rewrite are refused."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest
from support import make_bot

from indexes import embedder_for_bot, sync_index


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    bot = make_bot(tmp_path_factory.mktemp("docs") / "bot", base=str(tiny_model_dir))
    faq = [{"id": "faq/hours", "title": "Opening hours", "text": "Stores open at 9 am daily."}]
    (bot.docs_dir / "faq.jsonl").write_text("".join(json.dumps(line) + "\n" for line in faq))
    sync_index(bot, embedder_for_bot(bot))
    return bot


def cited(url: str, question: str) -> list[dict]:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
    completion = client.chat.completions.create(
        model=str(client.models.list().data[0].id),
        messages=[{"role": "user", "content": question}],
        max_tokens=2,
    )
    return completion.model_extra["citations"]


def test_a_new_document_is_cited_by_the_next_answer(bot, url: str) -> None:
    question = "Do you offer gift wrapping with a kestrel ribbon?"
    before = httpx.get(f"{url}/v1/index").json()
    assert all(c["document_id"] != "services/gift-wrap" for c in cited(url, question))
    put = httpx.put(
        f"{url}/v1/documents/services/gift-wrap",
        json={"title": "Gift wrapping", "text": "Gift wrapping with a kestrel ribbon costs $4."},
        timeout=60,
    )
    assert put.status_code == 200, put.text
    change = put.json()
    assert change["document"]["source"] == "services/gift-wrap.md"
    assert change["sync"]["added"] == ["services/gift-wrap"] and change["sync"]["published"]
    assert change["sync"]["chunks_embedded"] == 1, "only the new document is embedded"
    after = httpx.get(f"{url}/v1/index").json()
    assert after["version"] == before["version"] + 1
    assert after["documents"] == before["documents"] + 1
    citations = cited(url, question)
    assert citations[0]["document_id"] == "services/gift-wrap"
    assert "kestrel ribbon costs $4" in citations[0]["text"]
    assert (bot.docs_dir / "services" / "gift-wrap.md").read_text().startswith("# Gift wrapping")


def test_an_edited_document_is_answered_from_its_new_text(url: str) -> None:
    edited = httpx.put(
        f"{url}/v1/documents/returns",
        json={"title": "Returns", "text": "Returns are accepted within 75 days of delivery."},
        timeout=60,
    )
    assert edited.json()["sync"]["updated"] == ["returns"]
    citations = cited(url, "How many days do I have for returns?")
    returns = [c for c in citations if c["document_id"] == "returns"]
    assert returns and "75 days" in returns[0]["text"]
    assert "45 days" not in " ".join(c["text"] for c in returns)


def test_a_deleted_document_is_gone(url: str) -> None:
    assert httpx.get(f"{url}/v1/documents/repairs").json()["title"]
    deleted = httpx.delete(f"{url}/v1/documents/repairs", timeout=60)
    assert deleted.status_code == 200 and deleted.json()["sync"]["deleted"] == ["repairs"]
    missing = httpx.get(f"{url}/v1/documents/repairs")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "document_not_found"
    ids = [d["id"] for d in httpx.get(f"{url}/v1/documents").json()["data"]]
    assert "repairs" not in ids and "warranty" in ids
    hits = httpx.post(f"{url}/v1/search", json={"query": "repair workshop weeks"}).json()["data"]
    assert all(hit["document_id"] != "repairs" for hit in hits)


def test_documents_the_api_must_not_rewrite_are_refused(bot, url: str) -> None:
    jsonl = httpx.put(f"{url}/v1/documents/faq/hours", json={"title": "Hours", "text": "10 am"})
    assert jsonl.status_code == 409 and "faq.jsonl" in jsonl.json()["error"]["message"]
    bad = httpx.put(f"{url}/v1/documents/../secrets", json={"title": "x", "text": "y"})
    assert bad.status_code in (400, 404)
    weird = httpx.put(f"{url}/v1/documents/Bad Id", json={"title": "x", "text": "y"})
    assert weird.status_code == 400 and weird.json()["error"]["param"] == "id"
    assert not (bot.docs_dir.parent / "secrets.md").exists()


def test_a_full_sync_picks_up_files_changed_on_disk(bot, url: str) -> None:
    (bot.docs_dir / "pets.md").write_text("# Pets\n\nDogs on a leash are welcome in stores.\n")
    synced = httpx.post(f"{url}/v1/index/sync", timeout=120).json()
    assert synced["added"] == ["pets"] and synced["published"]
    again = httpx.post(f"{url}/v1/index/sync", timeout=120).json()
    assert again["published"] is False and again["unchanged"] >= 1


def test_a_refused_write_leaves_the_file_and_the_index_as_they_were(bot, url: str) -> None:
    file = bot.docs_dir / "shipping.md"
    before_file = file.read_bytes()
    before = httpx.get(f"{url}/v1/documents/shipping").json()
    version = httpx.get(f"{url}/v1/index").json()["version"]
    bad_texts = {
        "a NUL byte": {"title": "Shipping", "text": "Ships in 2 days.\x00\x01"},
        "a control character": {"title": "Shipping", "text": "line one\nline \x1b two"},
    }
    for why, body in bad_texts.items():
        refused = httpx.put(f"{url}/v1/documents/shipping", json=body, timeout=60)
        assert refused.status_code == 400, why
        assert refused.json()["error"]["param"] == "text", why
    surrogate = httpx.put(
        f"{url}/v1/documents/shipping",
        content=b'{"title": "Shipping", "text": "a\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert surrogate.status_code == 400, surrogate.text
    new = httpx.put(f"{url}/v1/documents/brand-new", json=bad_texts["a NUL byte"])
    assert new.status_code == 400
    two_lines = httpx.put(f"{url}/v1/documents/shipping", json={"title": "a\nb", "text": "x"})
    assert two_lines.status_code == 422 and two_lines.json()["error"]["param"] == "title"
    assert file.read_bytes() == before_file
    assert not (bot.docs_dir / "brand-new.md").exists()
    assert httpx.get(f"{url}/v1/documents/shipping").json() == before
    assert httpx.get(f"{url}/v1/index").json()["version"] == version


def test_a_document_read_back_and_written_again_is_unchanged(bot, url: str) -> None:
    document = httpx.get(f"{url}/v1/documents/warranty").json()
    file = bot.docs_dir / "warranty.md"
    assert document["text"].strip() == file.read_text().strip()
    assert document["text"].startswith(f"# {document['title']}")
    again = httpx.put(
        f"{url}/v1/documents/warranty",
        json={"title": document["title"], "text": document["text"]},
        timeout=60,
    )
    assert again.status_code == 200, again.text
    assert again.json()["sync"]["published"] is False, "the same text is no change"
    assert file.read_text().count(f"# {document['title']}") == 1
    faq = httpx.get(f"{url}/v1/documents/faq/hours").json()
    assert faq["text"] == "Stores open at 9 am daily."
