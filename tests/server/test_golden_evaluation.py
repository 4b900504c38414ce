"""`hybrid eval` on a tiny model: everything a run needs is checked before it starts,
batched answers are the ones one-by-one gives, and the report shows each variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import synced_bot

from hybrid.errors import InvalidInputError
from hybrid.types import AdapterRef
from server.eval_report import write_report
from server.evaluation import evaluate, read_golden
from training import AdapterNotFoundError


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    return synced_bot(
        tmp_path_factory.mktemp("eval") / "bot", base=str(tiny_model_dir), max_new_tokens=12
    )


@pytest.fixture(scope="module")
def golden(bot) -> Path:
    path = bot.data_dir / "golden.jsonl"
    lines = path.read_text().splitlines()[:5]
    unanswerable = {"question": "Do you sell e-bikes?", "reference": "", "answerable": False}
    path = path.with_name("small-golden.jsonl")
    path.write_text("\n".join([*lines, json.dumps(unanswerable)]) + "\n")
    return path


def test_a_bad_golden_line_or_a_missing_adapter_stops_the_run_before_it_starts(
    bot, golden: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "reference": "r"}\n{"question": "q", "facts": 3}\n')
    with pytest.raises(InvalidInputError, match=r"bad\.jsonl:2"):
        read_golden(bad)
    cases = read_golden(golden)
    with pytest.raises(AdapterNotFoundError):
        evaluate(bot, cases, ["adapter+rag"], AdapterRef("nobody"))
    with pytest.raises(InvalidInputError, match="unknown variant"):
        evaluate(bot, cases, ["base+magic"])


def test_batched_answers_are_the_one_by_one_answers_and_every_measure_is_counted(
    bot, golden: Path, tmp_path: Path
) -> None:
    cases = read_golden(golden)
    assert cases[0].facts, "without `facts`, the reference's figures are the key facts"
    assert cases[-1].answerable is False and cases[-1].facts == ()
    batched = evaluate(bot, cases, ["base+rag", "prompt+rag"])
    one_by_one = evaluate(bot, cases, ["base+rag", "prompt+rag"], at_once=1)
    for together, alone in zip(batched, one_by_one, strict=True):
        assert [a["answer"] for a in together.answers] == [a["answer"] for a in alone.answers]
    base, prompt = (score.summary() for score in batched)
    assert base["key_facts"]["of"] == 5 and base["handover_recall"]["of"] == 1
    assert base["invented_figures"]["of"] == 6
    assert prompt["variant"] == "prompt+rag" and base["stopped"]["of"] == 6
    plain, shown = (s.summary() for s in evaluate(bot, cases[:2], ["base", "prompt"]))
    assert shown["prompt_tokens"] > plain["prompt_tokens"] + 100, "examples in the prompt"
    report = write_report(batched, tmp_path / "report.html", "tiny")
    html = report.read_text()
    assert html.count("<svg") == 8 and "prompt+rag" in html and "Do you sell e-bikes?" in html
