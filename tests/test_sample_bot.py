"""The sample support bot that `hybrid init --template support` creates."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.config import load_config

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "hybrid" / "templates" / "support"
DOCS = sorted((TEMPLATE / "docs").glob("*.md"))
FORMAT = re.compile(
    r"\AHi there! (?P<answer>[^\n]+)\nPolicy: (?P<policy>[^\n]+)\nHappy trails! – Kestrel Support\Z"
)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def titles() -> dict[str, str]:
    return {p.stem: p.read_text().splitlines()[0].removeprefix("# ") for p in DOCS}


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.stem)
def test_each_policy_has_a_title_sections_an_effective_date_and_numbers(doc: Path) -> None:
    text = doc.read_text()
    assert text.startswith("# ")
    assert len(re.findall(r"^## ", text, re.M)) >= 2
    assert re.search(r"^Effective: \d{1,2} \w+ 20\d\d\.", text, re.M)
    assert len(re.findall(r"\d", text)) >= 5
    assert len(text.split()) >= 120


def test_there_are_twelve_to_twenty_policies() -> None:
    assert 12 <= len(DOCS) <= 20


def test_training_data_is_openai_chat_format_in_one_consistent_voice() -> None:
    rows = read_jsonl(TEMPLATE / "data" / "train.jsonl")
    assert len(rows) >= 300
    known_policies = set(titles().values())
    handover = load_config(TEMPLATE / "hybrid.toml").bot.handover
    handovers = [row for row in rows if row["messages"][2]["content"] == handover]
    assert len(handovers) >= 10, "questions no document answers are handed over"
    for row in rows:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        if row in handovers:
            continue
        reply = FORMAT.match(row["messages"][2]["content"])
        assert reply, row["messages"][2]["content"]
        assert len(reply["answer"].split()) <= 60
        assert reply["policy"] in known_policies
    assert len({normalise(r["messages"][1]["content"]) for r in rows}) == len(rows)


def test_the_golden_set_is_held_out_and_points_at_real_documents() -> None:
    golden = read_jsonl(TEMPLATE / "data" / "golden.jsonl")
    assert len(golden) >= 50
    doc_ids = set(titles())
    trained = {
        normalise(r["messages"][1]["content"])
        for r in read_jsonl(TEMPLATE / "data" / "train.jsonl")
    }
    handover = load_config(TEMPLATE / "hybrid.toml").bot.handover
    answerable = [row for row in golden if row.get("answerable", True)]
    for row in answerable:
        assert set(row) == {"id", "question", "reference", "doc_id", "facts"}
        assert row["doc_id"] in doc_ids
        assert FORMAT.match(row["reference"]), row["reference"]
        assert row["facts"] and all(f.lower() in row["reference"].lower() for f in row["facts"])
    unanswerable = [row for row in golden if not row.get("answerable", True)]
    assert len(unanswerable) >= 12
    assert all(row["reference"] == handover for row in unanswerable)
    customers = [row for row in answerable if row["question"][0].islower()]
    assert len(customers) >= 20, "questions worded as customers type them"
    for row in golden:
        assert normalise(row["question"]) not in trained, row["question"]
    assert len({r["id"] for r in golden}) == len(golden)


def test_the_committed_data_is_what_the_generator_makes() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/make_support_data.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
