"""OpenAI's Files API with the official client: a good training file is stored, listed,
retrieved and deleted; a broken one is refused, naming its line, and nothing is kept."""

from __future__ import annotations

import io
from pathlib import Path

import openai
import pytest
from support import make_bot, serving

from server.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    bot = make_bot(tmp_path_factory.mktemp("files") / "bot", base=str(tiny_model_dir))
    with serving(create_app(bot)) as url:
        yield bot, openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)


def test_a_training_file_is_stored_listed_and_deleted(client) -> None:
    bot, sdk = client
    data = (bot.data_dir / "train.jsonl").read_bytes()
    uploaded = sdk.files.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(data)
    assert (uploaded.filename, uploaded.purpose, uploaded.status) == (
        "train.jsonl", "fine-tune", "processed"
    )  # fmt: skip
    assert (bot.state_dir / "files" / f"{uploaded.id}.jsonl").read_bytes() == data
    assert [f.id for f in sdk.files.list()] == [uploaded.id]
    assert sdk.files.retrieve(uploaded.id).bytes == len(data)
    assert sdk.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(uploaded.id)
    assert not (bot.state_dir / "files" / f"{uploaded.id}.jsonl").exists()


def test_a_broken_training_file_is_refused_naming_its_line(client) -> None:
    bot, sdk = client
    lines = [*(bot.data_dir / "train.jsonl").read_text().splitlines()[:3], "{not json"]
    broken = ("\n".join(lines) + "\n").encode()
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.files.create(file=("mine.jsonl", io.BytesIO(broken)), purpose="fine-tune")
    assert "mine.jsonl:4" in refused.value.message and refused.value.body["param"] == "file"
    with pytest.raises(openai.BadRequestError, match="purpose"):
        sdk.files.create(file=("a.jsonl", io.BytesIO(b"{}\n")), purpose="assistants")
    assert sdk.files.list().data == [] and not list((bot.state_dir / "files").glob("*"))


def test_the_file_list_pages_by_cursor(client) -> None:
    bot, sdk = client
    data = (bot.data_dir / "train.jsonl").read_bytes()
    ids = [
        sdk.files.create(file=(f"t{n}.jsonl", io.BytesIO(data)), purpose="fine-tune").id
        for n in range(3)
    ]
    first = sdk.files.list(limit=2)
    assert [f.id for f in first.data] == ids[:2] and first.has_more
    assert [f.id for f in sdk.files.list(limit=2)] == ids, "the SDK follows the cursor"
    for file_id in ids:
        sdk.files.delete(file_id)
