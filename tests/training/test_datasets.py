"""Reading training data in every supported format; bad lines named by number."""

from __future__ import annotations

import json
from pathlib import Path

from hybrid.types import Message
from training import read_dataset


def write(path: Path, *records: object) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n")
    return path


def test_every_format_becomes_the_same_conversation(tmp_path: Path) -> None:
    file = write(
        tmp_path / "mixed.jsonl",
        {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]},
        {"instruction": "Q?", "output": "A."},
        {"conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]},
        {"prompt": "Q?", "completion": "A."},
        {"id": "g1", "question": "Q?", "reference": "A.", "doc_id": "returns"},
    )
    dataset = read_dataset(file)
    assert dataset.problems == []
    expected = (Message("user", "Q?"), Message("assistant", "A."))
    assert [example.messages for example in dataset.examples] == [expected] * 5
    assert [e.format for e in dataset.examples] == [
        "openai", "alpaca", "sharegpt", "prompt_completion", "golden"
    ]  # fmt: skip
    assert [e.line for e in dataset.examples] == [1, 2, 3, 4, 5]


def test_alpaca_input_and_system_and_sharegpt_system_are_kept(tmp_path: Path) -> None:
    file = write(
        tmp_path / "a.jsonl",
        {"instruction": "Translate", "input": "bonjour", "output": "hello", "system": "Be terse."},
        {
            "system": "S",
            "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hey"}],
        },
    )
    alpaca, sharegpt = read_dataset(file).examples
    assert alpaca.messages[0] == Message("system", "Be terse.")
    assert alpaca.messages[1] == Message("user", "Translate\n\nbonjour")
    assert sharegpt.messages[0] == Message("system", "S")


def test_an_assistant_turn_with_weight_0_is_shown_but_not_trained(tmp_path: Path) -> None:
    file = write(
        tmp_path / "w.jsonl",
        {
            "messages": [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b", "weight": 0},
                {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"},
            ]
        },
    )
    (example,) = read_dataset(file).examples
    assert example.trained == (False, False, False, True)
    assert example.to_openai()["messages"][1] == {"role": "assistant", "content": "b", "weight": 0}


def test_bad_lines_are_named_and_the_good_ones_load(tmp_path: Path) -> None:
    good = {"prompt": "Q?", "completion": "A."}
    file = write(
        tmp_path / "bad.jsonl",
        good,
        "{not json",
        {"messages": [{"role": "robot", "content": "x"}]},
        ["a", "list"],
        {"text": "unknown format"},
        {"prompt": "Q?", "completion": 3},
        {"messages": [{"role": "user", "content": "x", "weight": 0}]},
        "",
        good,
    )
    dataset = read_dataset(file)
    assert [e.line for e in dataset.examples] == [1, 9]
    found = [(p.line, p.check) for p in dataset.problems]
    assert found == [(2, "parse"), (3, "schema"), (4, "schema"), (5, "schema"), (6, "schema"),
                     (7, "schema")]  # fmt: skip
    messages = [p.message for p in dataset.problems]
    assert "column" in messages[0]
    assert "messages[0].role" in messages[1] and "'robot'" in messages[1]
    assert "unknown format" in messages[3]
    assert "`completion`" in messages[4]
    assert "weight" in messages[5]
    assert str(dataset.problems[0]).startswith(f"{file}:2: error: ")


def test_an_unreadable_or_empty_file_is_one_problem(tmp_path: Path) -> None:
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    for name, check in (("binary.jsonl", "encoding"), ("empty.jsonl", "empty"),
                        ("missing.jsonl", "unreadable")):  # fmt: skip
        dataset = read_dataset(tmp_path / name)
        assert dataset.examples == [] and [p.check for p in dataset.problems] == [check], name


def test_a_bad_byte_or_a_lone_surrogate_is_named_by_its_line(tmp_path: Path) -> None:
    good = json.dumps({"prompt": "Q?", "completion": "A."}).encode()
    surrogate = b'{"prompt": "a\\ud800", "completion": "b"}'
    file = tmp_path / "mixed.jsonl"
    file.write_bytes(
        b"\n".join([good, b'{"prompt": "caf\xe9", "completion": "x"}', surrogate, good])
    )
    dataset = read_dataset(file)
    assert [e.line for e in dataset.examples] == [1, 4]
    (byte, lone) = dataset.problems
    assert (byte.line, byte.check) == (2, "encoding") and "column 16" in byte.message
    assert (lone.line, lone.check) == (3, "encoding") and "surrogate" in lone.message
