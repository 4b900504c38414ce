"""`hybrid data export --from-logs`: the answers the bot really gave, curated into a
training set, each in the prompt it was served with (its sources included).

Kept: answers rated at least `min_rating`, and every answer a person corrected (the
correction replaces the answer and wins over any rating). Each rule below removes lines
and is counted, in this order; a line is counted under the first rule that removes it:

- unreadable: the logged row cannot be read back;
- excluded: a reviewer kept it out of training (in the admin console);
- error / cut_off: generation failed, or stopped before the end of the answer;
- not_rated / low_rating: no rating, or one below `min_rating`, and no correction;
- sources_not_logged: logged before the log kept the prompt's sources;
- invented_figure / broken_format: the answer fails the evaluation's checks (a figure
  in neither its sources nor the question; the `[evaluation]` format rules, which the
  bot's own hand-over message is exempt from), unless a person corrected it;
- stale_sources: a cited chunk is no longer in the published index: its text changed
  or its document went, so the answer may state a fact that is no longer true;
- in_golden_set: the question is (nearly) one of the golden set's, which would leak the
  evaluation into training;
- duplicate: the same or nearly the same conversation as a newer kept line.

Personal data is then redacted in the conversation (not in the sources: they are the
company's published documents).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hybrid.bot import Bot
from hybrid.errors import InvalidInputError
from hybrid.prompt import build_messages
from hybrid.types import AdapterRef, Message
from indexes import published_chunk_ids
from server.evaluation import read_golden
from server.flywheel.review import check_answer, golden_path
from server.interactions import InteractionLog, LoggedAnswer
from training.pii import redact
from training.similarity import normalise, similar_pairs
from training.snapshots import Snapshot, write_snapshot

RULES = (
    "unreadable",
    "excluded",
    "error",
    "cut_off",
    "not_rated",
    "low_rating",
    "sources_not_logged",
    "invented_figure",
    "broken_format",
    "stale_sources",
    "in_golden_set",
    "duplicate",
)
# Jaccard similarity of character 5-grams from which two questions count as the same
# (the lint's near-duplicate threshold).
SAME_QUESTION = 0.8


@dataclass(frozen=True)
class ExportRequest:
    min_rating: int = 4
    since: float | None = None  # Unix time
    adapter: AdapterRef | None = None  # only answers of this adapter (any version if none)
    golden: Path | None = None  # default: the bot's retrain.golden, if it exists


@dataclass
class ExportResult:
    snapshot: Snapshot | None  # None when no line passed
    considered: int  # logged answers in the selection (since, adapter)
    removed: dict[str, int] = field(default_factory=dict)
    redacted: int = 0  # lines with personal data replaced
    unreadable: list[str] = field(default_factory=list)  # "ID: why", for the log's keeper

    @property
    def kept(self) -> int:
        return self.snapshot.examples if self.snapshot else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot.id if self.snapshot else None,
            "path": str(self.snapshot.data_file) if self.snapshot else None,
            "considered": self.considered,
            "kept": self.kept,
            "removed": self.removed,
            "redacted": self.redacted,
            "unreadable": self.unreadable,
        }


def export_from_logs(bot: Bot, request: ExportRequest) -> ExportResult:
    """Curate the interaction log into a dataset snapshot under `.hybrid/datasets/`."""
    if not 1 <= request.min_rating <= 5:
        raise InvalidInputError("min_rating must be 1 to 5", param="min_rating")
    golden = request.golden or golden_path(bot)
    golden_questions = [case.question for case in read_golden(golden)] if golden.is_file() else []
    log = InteractionLog(bot.database)
    try:
        logged = [a for a in log.answers(since=request.since) if _selected(a, request.adapter)]
    finally:
        log.close()
    removed: Counter[str] = Counter()
    current = published_chunk_ids(bot)
    kept = []
    for answer in logged:
        rule = _first_failed_rule(bot, answer, request.min_rating, current)
        if rule:
            removed[rule] += 1
        else:
            kept.append(answer)
    kept = _without(kept, _leaked(kept, golden_questions), "in_golden_set", removed)
    kept = _without(kept, _older_duplicates(kept), "duplicate", removed)
    allowed = bot.config.training.pii_allowed
    records = [_example(bot, answer, allowed) for answer in kept]
    result = ExportResult(
        snapshot=None,
        considered=len(logged),
        removed={rule: removed[rule] for rule in RULES},
        redacted=sum(changed for _, changed in records),
        unreadable=[f"{answer.id}: {answer.problem}" for answer in logged if answer.problem],
    )
    if records:
        manifest = {
            "source": "interaction log",
            "min_rating": request.min_rating,
            "since": request.since,
            "adapter": str(request.adapter) if request.adapter else None,
            "until": max(answer.created_at for answer in kept),
            "considered": result.considered,
            "removed": result.removed,
            "redacted": result.redacted,
            "interaction_ids": [answer.id for answer in kept],
        }
        lines = [record for record, _ in records]
        result.snapshot = write_snapshot(bot.datasets_dir, lines, manifest)
    return result


def _selected(answer: LoggedAnswer, adapter: AdapterRef | None) -> bool:
    if adapter is None or answer.problem:
        return True
    if answer.adapter is None:
        return False
    served = AdapterRef.parse(answer.adapter)
    return served.name == adapter.name and adapter.version in (None, served.version)


def _first_failed_rule(
    bot: Bot, answer: LoggedAnswer, min_rating: int, current: set[str]
) -> str | None:
    """The rule (of those judged one answer at a time) that removes `answer`, if any."""
    corrected = answer.correction is not None
    if answer.problem:
        return "unreadable"
    if answer.excluded:
        return "excluded"
    if answer.error:
        return "error"
    if answer.finish_reason != "stop" and not corrected:
        return "cut_off"
    if not corrected and answer.rating is None:
        return "not_rated"
    if not corrected and answer.rating is not None and answer.rating < min_rating:
        return "low_rating"
    if answer.sources is None:
        return "sources_not_logged"
    checks = check_answer(bot, answer)
    if not corrected and not checks.handed_over and checks.invented:
        return "invented_figure"
    if not corrected and checks.format_problems:
        return "broken_format"
    if any(hit.chunk_id not in current for hit in answer.sources):
        return "stale_sources"
    return None


def _leaked(answers: list[LoggedAnswer], golden_questions: list[str]) -> set[int]:
    """Positions of the answers whose question is (nearly) a golden question."""
    if not golden_questions:
        return set()
    exact = {normalise(question) for question in golden_questions}
    leaked = {i for i, answer in enumerate(answers) if normalise(answer.question) in exact}
    offset = len(golden_questions)
    texts = golden_questions + [answer.question for answer in answers]
    leaked |= {j - offset for i, j, _ in similar_pairs(texts, SAME_QUESTION) if i < offset <= j}
    return leaked


def _older_duplicates(answers: list[LoggedAnswer]) -> set[int]:
    """Positions of the answers (oldest first) whose conversation a newer one repeats."""
    texts = ["\n".join(m.content for m in answer.conversation) for answer in answers]
    older = {i for i, _, _ in similar_pairs(texts, SAME_QUESTION)}
    seen: set[str] = set()
    for position in reversed(range(len(texts))):  # exact copies, whatever their length
        key = normalise(texts[position])
        if key in seen:
            older.add(position)
        seen.add(key)
    return older


def _without(
    answers: list[LoggedAnswer], positions: set[int], rule: str, removed: Counter[str]
) -> list[LoggedAnswer]:
    removed[rule] += len(positions)
    return [answer for i, answer in enumerate(answers) if i not in positions]


def _example(bot: Bot, answer: LoggedAnswer, allowed: Sequence[str]) -> tuple[dict[str, Any], bool]:
    """The training line for `answer` (its serving prompt, then the answer or its
    correction), and whether personal data was redacted in it."""
    said = [turn for turn in answer.conversation[:-1] if turn.role != "system"]
    history = [Message(turn.role, redact(turn.content, allowed)) for turn in said]
    question = redact(answer.question, allowed)
    reply = answer.correction or answer.answer
    redacted_reply = redact(reply, allowed)
    changed = (
        question != answer.question
        or redacted_reply != reply
        or any(a.content != b.content for a, b in zip(history, said, strict=True))
    )
    messages = build_messages(bot.config.bot.system_prompt, question, answer.sources or [], history)
    turns = [*messages, Message("assistant", redacted_reply)]
    return {"messages": [{"role": m.role, "content": m.content} for m in turns]}, changed
