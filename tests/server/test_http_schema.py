"""The OpenAPI document at /schema describes the real API, and no request, however
malformed, makes the server fail: schemathesis generates requests for every route from
that document (valid and invalid ones) and checks each answer against it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import synced_bot


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    return synced_bot(tmp_path_factory.mktemp("schema") / "bot", base=str(tiny_model_dir))


def test_the_schema_and_its_docs_pages_open_and_describe_openai_style_errors(url: str) -> None:
    for page in ("/schema", "/schema/swagger", "/schema/openapi.json"):
        assert httpx.get(url + page).status_code == 200, page
    document = httpx.get(f"{url}/schema/openapi.json").json()
    error = document["components"]["schemas"]["ErrorBody"]
    assert error["required"] == ["error"]
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]
    assert {"200", "400", "401", "404", "422", "429", "500", "503"} <= set(chat)
    assert set(chat["200"]["content"]) == {"application/json", "text/event-stream"}
    assert chat["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_no_request_gets_a_5xx_or_an_answer_the_schema_does_not_describe(
    url: str, tmp_path: Path
) -> None:
    """Every route, valid and invalid requests, a bounded number of each (the seed is
    fixed, so a failure here reproduces with the command it prints)."""
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{url}/schema/openapi.json",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_schema_conformance",
        "--phases", "examples,coverage,fuzzing", "--max-examples", "30", "--seed", "1",
        "--workers", "1", "--generation-database", "none",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    tested = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert tested and tested[1] == tested[2] and int(tested[1]) > 1000, run.stdout[-3000:]
