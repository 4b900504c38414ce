"""What a person reviews in the admin console: the logged answers, the ones most likely
wrong first (a low rating, a hand-over, an invented figure, a broken format), each with
the checks the export applies; and the golden set a reviewed answer can join."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from hybrid.bot import Bot
from hybrid.errors import ConflictError, InvalidInputError
from hybrid.prompt import grounding_text
from hybrid.staging import write_file_atomically
from server.evaluation import GoldenCase, read_golden
from server.interactions import LoggedAnswer
from training.evaluation import format_problems, invented_figures, is_handover
from training.similarity import normalise

LOW_RATING = 2  # this rating or below puts an answer at the head of the queue


@dataclass(frozen=True)
class AnswerChecks:
    """The evaluation's checks on one logged answer."""

    handed_over: bool
    invented: tuple[str, ...]  # figures in neither its sources nor the question
    format_problems: tuple[str, ...]  # empty for the bot's own hand-over message


def check_answer(bot: Bot, answer: LoggedAnswer) -> AnswerChecks:
    handed_over = is_handover(answer.answer, bot.config.bot.handover)
    given = grounding_text(answer.question, answer.sources or [])
    problems = () if handed_over else format_problems(answer.answer, bot.config.evaluation)
    return AnswerChecks(
        handed_over=handed_over,
        invented=tuple(invented_figures(answer.answer, given)),
        format_problems=tuple(problems),
    )


@dataclass(frozen=True)
class ReviewItem:
    answer: LoggedAnswer
    checks: AnswerChecks
    in_golden_set: bool

    @cached_property
    def _flags(self) -> list[tuple[int, str]]:
        """What flags it, as (seriousness, how it reads), most serious first; a failed or
        cut-off answer ranks below the four checks the queue is sorted by."""
        answer, checks = self.answer, self.checks
        rating = answer.rating
        flags = [
            (rating is not None and rating <= LOW_RATING, 0, f"rated {rating}"),
            (checks.handed_over, 1, "handed over"),
            (bool(checks.invented), 2, "invented " + ", ".join(checks.invented)),
            (bool(checks.format_problems), 3, "format: " + "; ".join(checks.format_problems)),
            (bool(answer.error), 4, f"error: {answer.error}"),
            (answer.finish_reason == "length", 4, "cut off"),
        ]
        return [(rank, text) for flagged, rank, text in flags if flagged]

    @property
    def reasons(self) -> list[str]:
        """Why it is in the queue, most serious first (empty: nothing flagged it)."""
        return [text for _, text in self._flags]

    @property
    def severity(self) -> int:
        return self._flags[0][0] if self._flags else 4

    @property
    def reviewed(self) -> bool:
        """A person has acted on it: corrected, excluded or put in the golden set."""
        answer = self.answer
        return answer.correction is not None or answer.excluded or self.in_golden_set

    @property
    def waiting(self) -> bool:
        return bool(self.reasons) and not self.reviewed


def review_queue(bot: Bot, answers: list[LoggedAnswer]) -> list[ReviewItem]:
    """Every readable answer: those waiting for a person first (by how serious the first
    reason is, then newest first), then the rest, newest first."""
    golden = {normalise(case.question) for case in _golden_cases(bot)}
    items = [
        ReviewItem(answer, check_answer(bot, answer), normalise(answer.question) in golden)
        for answer in answers
        if not answer.problem
    ]
    return sorted(
        items, key=lambda item: (not item.waiting, item.severity, -item.answer.created_at)
    )


def golden_path(bot: Bot) -> Path:
    return bot.root / bot.config.retrain.golden


def add_to_golden_set(
    bot: Bot, answer: LoggedAnswer, reference: str, facts: list[str], answerable: bool
) -> GoldenCase:
    """Append the answer's question to the golden set (retrain.golden) with `reference`
    as the right answer and `facts` as what an answer must state. The file is rewritten
    whole and replaced atomically, so a crash leaves the old set or the new one."""
    if not reference.strip():
        raise InvalidInputError("the reference answer is empty", param="reference")
    facts = [fact.strip() for fact in facts if fact.strip()]
    path = golden_path(bot)
    cases = _golden_cases(bot)
    if normalise(answer.question) in {normalise(case.question) for case in cases}:
        raise ConflictError(f"{path} already holds this question", param="question")
    sources = answer.sources or []
    record = {
        "id": f"review-{answer.id}",
        "question": answer.question,
        "reference": reference.strip(),
        "doc_id": sources[0].document_id if sources and answerable else None,
        "facts": facts or None,  # none given: the reference's figures (as read_golden does)
        "answerable": answerable,
    }
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    line = json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file_atomically(path, f"{old}{line}\n".encode())
    return read_golden(path)[-1]


def _golden_cases(bot: Bot) -> list[GoldenCase]:
    path = golden_path(bot)
    return read_golden(path) if path.is_file() and path.stat().st_size else []
