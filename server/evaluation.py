"""`hybrid eval`: the assistant answers a golden set in several variants, and each
answer is scored on what a customer would notice:

- key facts: the golden line's `facts` (strings the answer must state; by default the
  reference's figures) are all in the answer;
- invented figures: every figure of the answer (number, amount, duration, date, phone,
  e-mail, URL) is in the sources it was given or in the question;
- hand-overs: a question the documents cannot answer (`"answerable": false`) gets the
  bot's hand-over, and an answerable one does not;
- format adherence (the `[evaluation]` rules), ROUGE-L against the reference, whether
  the needed document was cited, tokens, finish reason and latency.

Variants: the base model, the base model with the style shown by a few training
examples (`prompt`: the prompt-first baseline an adapter must beat), or an adapter;
each with retrieval (`+rag`) or without. Every question of every variant goes through
the engine's continuous batching at once, not one after another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.bot import Bot
from hybrid.errors import HybridError, InvalidInputError
from hybrid.prompt import grounding_text
from hybrid.types import AdapterRef, Message
from server.assistant import Answer, AnswerStream, Assistant
from server.compose import find_adapter, open_assistant
from training import read_dataset
from training.evaluation import (
    figures,
    format_problems,
    invented_figures,
    is_handover,
    missing_facts,
    rouge_l,
)

VARIANTS = ("base", "base+rag", "prompt", "prompt+rag", "adapter", "adapter+rag")
# Training conversations shown to the `prompt` variants as earlier turns.
PROMPT_EXAMPLES = 3


@dataclass(frozen=True)
class GoldenCase:
    id: str
    question: str
    reference: str
    doc_id: str | None
    facts: tuple[str, ...]  # what the answer must state (the reference's figures if none given)
    answerable: bool = True


@dataclass
class VariantScore:
    variant: str
    answers: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """Each measure as a share of the answers it applies to, with both counts."""
        answerable = [a for a in self.answers if a["answerable"]]
        unanswerable = [a for a in self.answers if not a["answerable"]]
        handed_over = [a for a in self.answers if a["handed_over"]]
        return {
            "variant": self.variant,
            "questions": len(self.answers),
            "key_facts": _share(answerable, lambda a: not a["missing_facts"]),
            "invented_figures": _share(self.answers, lambda a: bool(a["invented_figures"])),
            "handover_recall": _share(unanswerable, lambda a: a["handed_over"]),
            "handover_precision": _share(handed_over, lambda a: not a["answerable"]),
            "answerable_handed_over": _share(answerable, lambda a: a["handed_over"]),
            "format_adherence": _share(self.answers, lambda a: a["follows_format"]),
            "cited_the_document": _share(
                [a for a in answerable if a["cited_document"] is not None],
                lambda a: a["cited_document"],
            ),
            "rouge_l": _mean(answerable, "rouge_l"),
            "prompt_tokens": _mean(self.answers, "prompt_tokens"),
            "completion_tokens": _mean(self.answers, "completion_tokens"),
            "stopped": _share(self.answers, lambda a: a["finish_reason"] == "stop"),
            "seconds_per_answer": _mean(self.answers, "seconds"),
            "seconds": round(self.seconds, 2),
        }


def read_golden(path: Path) -> list[GoldenCase]:
    """The golden set: lines {"question", "reference"} with optional "id", "doc_id",
    "facts" (a list of strings) and "answerable" (default true). Errors name the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read the golden set ({exc})") from exc
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            cases.append(_golden_case(line, f"{path}:{number}", str(number)))
    if not cases:
        raise InvalidInputError(f"{path} holds no questions")
    return cases


def _golden_case(line: str, where: str, default_id: str) -> GoldenCase:
    expected = (
        'expected {"question", "reference"} with optional "id", "doc_id", "facts" (a list '
        'of strings) and "answerable" (true or false)'
    )
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise InvalidInputError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(record, dict) or not all(
        isinstance(record.get(name), str) for name in ("question", "reference")
    ):
        raise InvalidInputError(f"{where}: {expected}")
    facts = record.get("facts")
    answerable = record.get("answerable", True)
    if facts is not None and not (
        isinstance(facts, list) and all(isinstance(f, str) and f.strip() for f in facts)
    ):
        raise InvalidInputError(f"{where}: `facts` must be a list of non-empty strings")
    if not isinstance(answerable, bool):
        raise InvalidInputError(f"{where}: `answerable` must be true or false")
    if facts is None:
        facts = sorted(figures(record["reference"])) if answerable else []
    return GoldenCase(
        id=str(record.get("id", default_id)),
        question=record["question"],
        reference=record["reference"],
        doc_id=record.get("doc_id"),
        facts=tuple(facts),
        answerable=answerable,
    )


@dataclass(frozen=True)
class Arm:
    """One column of an evaluation: a variant, with its adapter, answering its cases."""

    label: str
    variant: str
    adapter: AdapterRef | None
    cases: list[GoldenCase]


def evaluate(
    bot: Bot,
    cases: list[GoldenCase],
    variants: list[str],
    adapter: AdapterRef | None = None,
    progress: Callable[[str, int], None] | None = None,
    *,
    at_once: int | None = None,
) -> list[VariantScore]:
    """Answer `cases` in each variant and score every answer."""
    arms = [Arm(v, v, adapter if v.startswith("adapter") else None, cases) for v in variants]
    if adapter is None and any(v.startswith("adapter") for v in variants):
        raise InvalidInputError(
            "the adapter variants need --adapter NAME[@VERSION]", param="adapter"
        )
    return evaluate_arms(bot, arms, progress, at_once=at_once)


def evaluate_arms(
    bot: Bot,
    arms: list[Arm],
    progress: Callable[[str, int], None] | None = None,
    *,
    at_once: int | None = None,
) -> list[VariantScore]:
    """Answer each arm's cases and score every answer, all arms in one batched run (two
    adapters side by side share the batch). Up to `at_once` answers are generated
    together (default: the engine's batch and its queue). Scores are labelled by arm."""
    examples = _check(bot, arms)
    with_retrieval = open_assistant(bot, retrieval=any(a.variant.endswith("+rag") for a in arms))
    without = Assistant(
        with_retrieval.generator,
        system_prompt=with_retrieval.system_prompt,
        settings=with_retrieval.settings,
        budget=with_retrieval.budget,
    )
    served = bot.config.server
    at_once = at_once or served.max_batch + min(served.max_waiting, served.max_batch)
    with with_retrieval:  # stops the engine's worker when done
        runs = [
            _Run(
                arm.label,
                arm.variant,
                with_retrieval if arm.variant.endswith("+rag") else without,
                arm.adapter,
                examples if arm.variant.startswith("prompt") else [],
                case,
            )
            for arm in arms
            for case in arm.cases
        ]
        scores = {arm.label: VariantScore(arm.label) for arm in arms}
        started = time.perf_counter()
        done: dict[str, int] = dict.fromkeys(scores, 0)
        for run, answer in _answer_all(runs, at_once):
            scores[run.label].answers.append(_scored(bot, run, answer))
            done[run.label] += 1
            if progress:
                progress(run.label, done[run.label])
            scores[run.label].seconds = time.perf_counter() - started
    return list(scores.values())


@dataclass(frozen=True)
class _Run:
    label: str
    variant: str
    assistant: Assistant
    adapter: AdapterRef | None
    examples: list[Message]  # earlier turns that show the style (the prompt variants)
    case: GoldenCase


def _answer_all(runs: list[_Run], at_once: int) -> Iterator[tuple[_Run, Answer | HybridError]]:
    """Each run's answer (or why it has none), in order, with up to `at_once`
    generating together."""
    pending: list[tuple[_Run, AnswerStream | HybridError]] = []
    queue = iter(runs)
    while True:
        while len(pending) < at_once and (run := next(queue, None)) is not None:
            conversation = [*run.examples, Message("user", run.case.question)]
            try:
                prompt = run.assistant.prepare(conversation)
                pending.append((run, run.assistant.stream(prompt, adapter=run.adapter)))
            except HybridError as exc:  # e.g. a question longer than the context
                pending.append((run, exc))
        if not pending:
            return
        run, stream = pending.pop(0)
        if isinstance(stream, HybridError):
            yield run, stream
            continue
        try:
            for _ in stream:
                pass
        except HybridError as exc:
            yield run, exc
            continue
        assert stream.answer is not None
        yield run, stream.answer


def _scored(bot: Bot, run: _Run, answer: Answer | HybridError) -> dict[str, Any]:
    case = run.case
    if isinstance(answer, HybridError):
        return _failed(run, answer)
    given = grounding_text(case.question, answer.citations)
    cited = [hit.document_id for hit in answer.citations]
    handed_over = is_handover(answer.text, bot.config.bot.handover)
    return {
        **_case_fields(case),
        "answer": answer.text,
        "missing_facts": missing_facts(answer.text, case.facts) if case.answerable else [],
        "invented_figures": [] if handed_over else invented_figures(answer.text, given),
        "handed_over": handed_over,
        # The hand-over is the bot's own configured message, not the model's format.
        "follows_format": handed_over or not format_problems(answer.text, bot.config.evaluation),
        "rouge_l": rouge_l(answer.text, case.reference),
        "cited_document": (case.doc_id in cited)
        if case.doc_id and run.variant.endswith("+rag")
        else None,
        "sources": [
            {"document_id": hit.document_id, "title": hit.title, "text": hit.text}
            for hit in answer.citations
        ],
        "adapter": str(answer.adapter) if answer.adapter else None,
        "prompt_tokens": answer.generation.prompt_tokens,
        "completion_tokens": answer.generation.completion_tokens,
        "finish_reason": answer.generation.finish_reason,
        "seconds": round(answer.seconds, 3),
    }


def _failed(run: _Run, error: HybridError) -> dict[str, Any]:
    """A question the variant could not answer: it counts as missing every fact."""
    case = run.case
    return {
        **_case_fields(case),
        "answer": "",
        "error": error.message,
        "missing_facts": list(case.facts) if case.answerable else [],
        "invented_figures": [],
        "handed_over": False,
        "follows_format": False,
        "rouge_l": 0.0,
        "cited_document": False if case.doc_id and run.variant.endswith("+rag") else None,
        "sources": [],
        "adapter": None,
        "prompt_tokens": None,
        "completion_tokens": None,
        "finish_reason": "error",
        "seconds": None,
    }


def _case_fields(case: GoldenCase) -> dict[str, Any]:
    return {
        "id": case.id,
        "question": case.question,
        "reference": case.reference,
        "answerable": case.answerable,
        "facts": list(case.facts),
    }


def _check(bot: Bot, arms: list[Arm]) -> list[Message]:
    """Everything a run needs, checked before any model loads: the variants, the
    adapters, and for the prompt variants the training examples (returned as turns)."""
    unknown = {arm.variant for arm in arms} - set(VARIANTS)
    if unknown:
        raise InvalidInputError(
            f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}",
            param="variants",
        )
    for arm in arms:
        if arm.adapter is not None:
            find_adapter(bot, arm.adapter)  # raises AdapterNotFoundError now, not mid-run
    if not any(arm.variant.startswith("prompt") for arm in arms):
        return []
    return _style_examples(bot.data_dir / "train.jsonl")


def _style_examples(path: Path) -> list[Message]:
    """The first few training conversations' last question and answer, as turns."""
    dataset = read_dataset(path)
    turns: list[Message] = []
    for example in dataset.examples[:PROMPT_EXAMPLES]:
        question = example.last_user
        answer = next((m.content for m in reversed(example.messages) if m.role == "assistant"), "")
        turns += [Message("user", question), Message("assistant", answer)]
    if not turns:
        problems = "; ".join(str(p) for p in dataset.problems[:3]) or "no examples"
        raise InvalidInputError(
            f"the prompt variants show examples from {path}, which has none usable ({problems})"
        )
    return turns


def _share(answers: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> dict:
    hits = sum(1 for answer in answers if test(answer))
    return {"share": round(hits / len(answers), 3) if answers else None, "count": hits,
            "of": len(answers)}  # fmt: skip


def _mean(answers: list[dict[str, Any]], key: str) -> float | None:
    values = [answer[key] for answer in answers if answer[key] is not None]
    return round(sum(values) / len(values), 3) if values else None
