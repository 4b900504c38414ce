"""`hybrid data lint`: everything that makes a training file train badly, found before
a training run spends an hour on it.

Errors stop `hybrid train` (unless forced): unreadable lines, wrong schema, empty turns,
turns out of order, nothing to train, examples longer than the maximum sequence length,
and evaluation examples copied from the training file. Warnings are reported and left to
the user: duplicates, near duplicates, contradictions and personal data.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hybrid.config import TrainingSettings
from training.datasets import (
    DataProblem,
    Dataset,
    Example,
    Severity,
    read_dataset,
    with_system_prompt,
)
from training.pii import find_pii, redact
from training.rendering import tokenize_example
from training.similarity import jaccard, normalise, shingles, similar_pairs

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Jaccard similarity of character 5-grams from which two texts count as the same: a word
# added to a question ("for the unused items") stays above it, another product ("a used
# tent" / "a used stove") or another number falls below.
NEAR_DUPLICATE = 0.8
DIFFERENT_ANSWER = 0.5  # answers below this similarity to each other disagree

TokenCounter = Callable[[Example], int]


@dataclass
class LintReport:
    train: Dataset
    eval: Dataset | None = None
    problems: list[DataProblem] = field(default_factory=list)
    token_lengths: list[int] = field(default_factory=list)
    max_seq_length: int | None = None

    @property
    def errors(self) -> list[DataProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[DataProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def bad_lines(self, path: Path) -> set[int]:
        """Lines of `path` with an error: left out of training when it is forced."""
        return {p.line for p in self.errors if p.file == str(path) and p.line is not None}

    def counts(self) -> dict[str, dict[Severity, int]]:
        table: dict[str, Counter[Severity]] = {}
        for problem in self.problems:
            table.setdefault(problem.check, Counter())[problem.severity] += 1
        return {check: {"error": c["error"], "warning": c["warning"]} for check, c in table.items()}

    def length_stats(self) -> dict[str, int] | None:
        lengths = sorted(self.token_lengths)
        if not lengths:
            return None
        return {
            "min": lengths[0],
            "median": int(statistics.median(lengths)),
            "p95": lengths[min(len(lengths) - 1, round(0.95 * (len(lengths) - 1)))],
            "max": lengths[-1],
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.train.path),
            "eval_file": str(self.eval.path) if self.eval else None,
            "examples": len(self.train.examples),
            "eval_examples": len(self.eval.examples) if self.eval else None,
            "formats": dict(Counter(example.format for example in self.train.examples)),
            "ok": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "counts": self.counts(),
            "token_lengths": self.length_stats(),
            "max_seq_length": self.max_seq_length,
            "problems": [asdict(problem) for problem in self.problems],
        }


def lint_data(
    train_file: Path,
    *,
    eval_file: Path | None = None,
    count_tokens: TokenCounter | None = None,
    max_seq_length: int | None = None,
    pii_allowed: Collection[str] = (),
) -> LintReport:
    """Run every check on `train_file` (and the overlap and per-line checks on
    `eval_file`). Token lengths are measured only when `count_tokens` is given."""
    train = read_dataset(train_file)
    evaluation = read_dataset(eval_file) if eval_file else None
    report = LintReport(train, evaluation, max_seq_length=max_seq_length)
    for dataset in (train, evaluation):
        if dataset is None:
            continue
        report.problems += dataset.problems
        for example in dataset.examples:
            report.problems += _structure(dataset.path, example)
            report.problems += _personal_data(dataset.path, example, pii_allowed)
        report.problems += _duplicates(dataset)
        report.problems += _repeated_questions(dataset)
    if count_tokens is not None:
        # Only well-formed conversations can be rendered with a chat template.
        bad = report.bad_lines(train.path)
        measurable = [example for example in train.examples if example.line not in bad]
        report.problems += _lengths(
            train.path, measurable, count_tokens, max_seq_length, report.token_lengths
        )
    if evaluation is not None:
        report.problems += _overlap(train, evaluation)
    report.problems.sort(key=lambda p: (p.file != str(train_file), p.file, p.line or 0))
    return report


def lint_for_training(
    train_file: Path,
    *,
    eval_file: Path | None,
    tokenizer: PreTrainedTokenizerBase,
    settings: TrainingSettings,
    system_prompt: str,
) -> LintReport:
    """lint_data as `hybrid data lint` and `hybrid train` run it: lengths measured with
    the base model's tokenizer and chat template on the examples as trained (led by the
    bot's system prompt where they have none), limits from the bot's [training]."""

    def count_tokens(example: Example) -> int:
        trained = with_system_prompt(example, system_prompt)
        return len(tokenize_example(tokenizer, trained).input_ids)

    report = lint_data(
        train_file,
        eval_file=eval_file,
        count_tokens=count_tokens,
        max_seq_length=settings.max_seq_length,
        pii_allowed=settings.pii_allowed,
    )
    unled = sum(1 for example in report.train.examples if example.messages[0].role != "system")
    if unled:
        message = (
            f"{unled} example(s) have no system turn: training gives them the bot's system "
            "prompt (bot.system_prompt), as serving does"
        )
        report.problems.append(
            DataProblem(str(train_file), None, "system_prompt_added", message, "warning")
        )
    return report


def write_redacted(dataset: Dataset, target: Path, allowed: Collection[str] = ()) -> int:
    """Write the dataset's examples to `target` in OpenAI chat format with personal data
    replaced by placeholders. Returns how many examples changed."""
    import json

    changed = 0
    lines = []
    for example in dataset.examples:
        record = example.to_openai()
        for message in record["messages"]:
            clean = redact(message["content"], allowed)
            changed += clean != message["content"]
            message["content"] = clean
        lines.append(json.dumps(record, ensure_ascii=False))
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return changed


def _structure(path: Path, example: Example) -> list[DataProblem]:
    problems = []

    def error(check: str, message: str) -> None:
        problems.append(DataProblem(str(path), example.line, check, message))

    for index, message in enumerate(example.messages):
        if not message.content.strip():
            error("empty_turn", f"messages[{index}] ({message.role}) is empty")
    roles = [m.role for m in example.messages]
    turns = roles[1:] if roles[0] == "system" else roles
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(turns))]
    if turns != expected or not turns or turns[-1] != "assistant":
        error(
            "role_order",
            f"roles are {' → '.join(roles)}; expected an optional system turn, then user and "
            "assistant turns alternating, ending with the assistant",
        )
    elif not any(example.trained):
        error("nothing_to_train", "every assistant turn has weight 0: nothing to learn")
    return problems


def _personal_data(path: Path, example: Example, allowed: Collection[str]) -> list[DataProblem]:
    problems = []
    for index, message in enumerate(example.messages):
        for finding in find_pii(message.content, allowed):
            problems.append(
                DataProblem(
                    str(path),
                    example.line,
                    "personal_data",
                    f"{finding.kind} {finding.masked} in messages[{index}] ({message.role}); "
                    "write a redacted copy with --redact FILE",
                    "warning",
                )
            )
    return problems


def _conversation(example: Example) -> str:
    """What makes two examples the same: every turn but the shared system prompt."""
    return "\n".join(m.content for m in example.messages if m.role != "system")


def _duplicates(dataset: Dataset) -> list[DataProblem]:
    """Exact copies (once case and punctuation are ignored)."""
    problems = []
    first: dict[str, Example] = {}
    for example in dataset.examples:
        key = normalise(_conversation(example))
        if key in first:
            message = f"duplicate of line {first[key].line}"
            problems.append(_warning(dataset, example, "duplicate", message))
        else:
            first[key] = example
    return problems


def _repeated_questions(dataset: Dataset) -> list[DataProblem]:
    """Nearly the same question twice: with nearly the same answer it is a near duplicate
    (over-weighting one example); with a different answer, a contradiction. Different
    questions sharing one answer are paraphrases, which is good data."""
    distinct = list({normalise(_conversation(e)): e for e in reversed(dataset.examples)}.values())
    distinct.reverse()  # exact copies are reported by _duplicates, once
    pairs = similar_pairs([example.last_user for example in distinct], NEAR_DUPLICATE)
    problems = []
    for i, j, _ in pairs:
        first, second = distinct[i], distinct[j]
        agreement = jaccard(shingles(first.answers), shingles(second.answers))
        if agreement >= NEAR_DUPLICATE:
            message = f"near duplicate of line {first.line} ({agreement:.0%} of the answer alike)"
            problems.append(_warning(dataset, second, "near_duplicate", message))
        elif agreement < DIFFERENT_ANSWER:
            message = (
                f"asks what line {first.line} asks but answers differently "
                f"({agreement:.0%} of the answer alike)"
            )
            problems.append(_warning(dataset, second, "contradiction", message))
    return problems


def _lengths(
    path: Path,
    examples: list[Example],
    count_tokens: TokenCounter,
    limit: int | None,
    lengths: list[int],
) -> list[DataProblem]:
    problems = []
    for example in examples:
        tokens = count_tokens(example)
        lengths.append(tokens)
        if limit is not None and tokens > limit:
            message = (
                f"{tokens} tokens, longer than training.max_seq_length = {limit}: the end of "
                "the answer (and its end-of-turn token) would be cut off"
            )
            problems.append(DataProblem(str(path), example.line, "too_long", message))
    return problems


def _overlap(train: Dataset, evaluation: Dataset) -> list[DataProblem]:
    """Evaluation questions the training file already teaches: they make a score lie."""
    seen = {normalise(example.last_user): example for example in train.examples}
    problems = []
    for example in evaluation.examples:
        twin = seen.get(normalise(example.last_user))
        if twin is not None:
            problems.append(
                DataProblem(
                    str(evaluation.path),
                    example.line,
                    "eval_overlap",
                    f"the same question as {train.path.name}:{twin.line}",
                )
            )
    exact = {p.line for p in problems}
    questions = [e.last_user for e in train.examples] + [e.last_user for e in evaluation.examples]
    offset = len(train.examples)
    for i, j, similarity in similar_pairs(questions, NEAR_DUPLICATE):
        if i < offset <= j and evaluation.examples[j - offset].line not in exact:
            example = evaluation.examples[j - offset]
            message = (
                f"nearly the same question as {train.path.name}:{train.examples[i].line} "
                f"({similarity:.0%} similar)"
            )
            problems.append(_warning(evaluation, example, "eval_overlap", message))
    return problems


def _warning(dataset: Dataset, example: Example, check: str, message: str) -> DataProblem:
    return DataProblem(str(dataset.path), example.line, check, message, "warning")
