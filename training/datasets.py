"""Training data: JSONL files in the four formats people have, read into one shape.

OpenAI chat (`{"messages": [{"role", "content"}, ...]}`) is canonical; Alpaca
(`instruction`, optional `input` and `system`, `output`), ShareGPT (`conversations` of
`{"from", "value"}`), prompt/completion and golden sets (`question`, `reference`) are
normalised to it. Each line is read on its
own, so a bad line is reported with its number and the rest still load. In OpenAI chat
files an assistant turn may carry `"weight": 0` to be shown to the model but not trained.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from hybrid.types import Message

Severity = Literal["error", "warning"]
Format = Literal["openai", "alpaca", "sharegpt", "prompt_completion", "golden"]

_SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}


@dataclass(frozen=True)
class Example:
    """One conversation. `trained[i]` says whether message i is learned (assistant turns
    only, unless weighted 0)."""

    messages: tuple[Message, ...]
    trained: tuple[bool, ...]
    line: int
    format: Format

    @property
    def last_user(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")

    @property
    def answers(self) -> str:
        return "\n".join(m.content for m in self.messages if m.role == "assistant")

    def to_openai(self) -> dict[str, Any]:
        """The canonical JSON form (weights kept where a turn is not trained)."""
        rows = []
        for message, trained in zip(self.messages, self.trained, strict=True):
            row: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.role == "assistant" and not trained:
                row["weight"] = 0
            rows.append(row)
        return {"messages": rows}


@dataclass(frozen=True)
class DataProblem:
    """Something wrong with a line (or the whole file, line None)."""

    file: str
    line: int | None
    check: str  # machine-readable name of the check, e.g. "duplicate"
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class Dataset:
    path: Path
    examples: list[Example] = field(default_factory=list)
    problems: list[DataProblem] = field(default_factory=list)


class _BadLine(Exception):
    def __init__(self, check: str, message: str) -> None:
        super().__init__(message)
        self.check = check


def with_system_prompt(example: Example, system_prompt: str) -> Example:
    """`example` led by `system_prompt` when it has no system turn of its own, as the bot
    is served: a chat template would otherwise put in a default of its own (SmolLM2's
    names itself SmolLM), and the adapter would learn a prompt it is never served with."""
    if example.messages[0].role == "system":
        return example
    return replace(
        example,
        messages=(Message("system", system_prompt), *example.messages),
        trained=(False, *example.trained),
    )


def read_dataset(path: Path) -> Dataset:
    """Every line of `path` that is a valid example; the others become problems."""
    dataset = Dataset(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        dataset.problems.append(_problem(path, None, "unreadable", exc.strerror or str(exc)))
        return dataset
    for number, line in _lines(data.removeprefix(codecs.BOM_UTF8)):
        try:
            dataset.examples.append(parse_example(_decoded(line), number))
        except _BadLine as bad:
            dataset.problems.append(_problem(path, number, bad.check, str(bad)))
    if not dataset.examples and not dataset.problems:
        dataset.problems.append(_problem(path, None, "empty", "the file holds no examples"))
    return dataset


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    # Split on line feeds only: JSON strings cannot hold a raw one, so this is where
    # JSONL lines end, and a bad byte on one line leaves the others readable.
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def _decoded(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadLine("encoding", f"not UTF-8 text (bad byte at column {exc.start + 1})") from None


def _problem(path: Path, line: int | None, check: str, message: str) -> DataProblem:
    return DataProblem(str(path), line, check, message)


def parse_example(line: str, number: int) -> Example:
    """One JSONL line in any supported format, as an Example (or _BadLine saying why)."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadLine("parse", f"not valid JSON ({exc.msg}, column {exc.colno})") from exc
    if not isinstance(record, dict):
        raise _BadLine("schema", "expected a JSON object")
    example = _example(record, number)
    for index, message in enumerate(example.messages):
        try:
            message.content.encode("utf-8")
        except UnicodeEncodeError as exc:
            char = message.content[exc.start]
            raise _BadLine(
                "encoding",
                f"message {index} ({message.role}) holds a lone surrogate {char!r} at "
                f"character {exc.start}: not text a tokenizer can read",
            ) from None
    return example


def _example(record: dict[str, Any], number: int) -> Example:
    if "messages" in record:
        return _openai(record, number)
    if "conversations" in record:
        return _sharegpt(record, number)
    if "instruction" in record:
        return _alpaca(record, number)
    if "prompt" in record:
        return _pair(record, number, ("prompt", "completion"), "prompt_completion")
    if "question" in record:
        return _pair(record, number, ("question", "reference"), "golden")
    raise _BadLine(
        "schema",
        "unknown format: expected `messages` (OpenAI chat), `conversations` (ShareGPT), "
        "`instruction` (Alpaca), `prompt`/`completion` or `question`/`reference` (golden)",
    )


def _openai(record: dict[str, Any], number: int) -> Example:
    turns = record["messages"]
    if not isinstance(turns, list) or not turns:
        raise _BadLine("schema", "`messages` must be a non-empty list")
    messages, trained = [], []
    for index, turn in enumerate(turns):
        where = f"messages[{index}]"
        if not isinstance(turn, dict):
            raise _BadLine("schema", f"{where} must be an object with role and content")
        role, content = turn.get("role"), turn.get("content")
        if role not in ("system", "user", "assistant"):
            raise _BadLine(
                "schema", f"{where}.role must be system, user or assistant, not {role!r}"
            )
        if not isinstance(content, str):
            raise _BadLine("schema", f"{where}.content must be a string")
        weight = turn.get("weight", 1)
        if weight not in (0, 1) or (weight == 0 and role != "assistant"):
            raise _BadLine("schema", f"{where}.weight must be 0 or 1, on assistant turns only")
        messages.append(Message(role, content))
        trained.append(role == "assistant" and weight == 1)
    return Example(tuple(messages), tuple(trained), number, "openai")


def _sharegpt(record: dict[str, Any], number: int) -> Example:
    turns = record["conversations"]
    if not isinstance(turns, list) or not turns:
        raise _BadLine("schema", "`conversations` must be a non-empty list")
    messages = []
    for index, turn in enumerate(turns):
        where = f"conversations[{index}]"
        if not isinstance(turn, dict):
            raise _BadLine("schema", f"{where} must be an object with from and value")
        role = _SHAREGPT_ROLES.get(str(turn.get("from")))
        if role is None:
            raise _BadLine("schema", f"{where}.from must be system, human or gpt")
        if not isinstance(turn.get("value"), str):
            raise _BadLine("schema", f"{where}.value must be a string")
        messages.append(Message(role, turn["value"]))
    system = record.get("system")
    if isinstance(system, str) and system.strip():
        messages.insert(0, Message("system", system))
    return _plain(messages, number, "sharegpt")


def _alpaca(record: dict[str, Any], number: int) -> Example:
    fields = _strings(record, required=("instruction", "output"), optional=("input", "system"))
    question = fields["instruction"]
    if fields.get("input", "").strip():
        question = f"{question}\n\n{fields['input']}"
    messages = [Message("user", question), Message("assistant", fields["output"])]
    if fields.get("system", "").strip():
        messages.insert(0, Message("system", fields["system"]))
    return _plain(messages, number, "alpaca")


def _pair(record: dict[str, Any], number: int, names: tuple[str, str], format: Format) -> Example:
    """A single question and answer under the field names `names`."""
    fields = _strings(record, required=names, optional=())
    messages = [Message("user", fields[names[0]]), Message("assistant", fields[names[1]])]
    return _plain(messages, number, format)


def _strings(
    record: dict[str, Any], *, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, str]:
    for name in required:
        if not isinstance(record.get(name), str):
            raise _BadLine("schema", f"field `{name}` must be a string")
    for name in optional:
        if name in record and not isinstance(record[name], str):
            raise _BadLine("schema", f"field `{name}` must be a string")
    return {name: record[name] for name in (*required, *optional) if name in record}


def _plain(messages: list[Message], number: int, format: Format) -> Example:
    trained = tuple(m.role == "assistant" for m in messages)
    return Example(tuple(messages), trained, number, format)
