"""A candidate adapter against the active one, question by question.

Each golden question is a win, a tie or a loss for the candidate, decided by the
evaluation's checks in order of what matters to a customer: the answer is right (whole,
not cut off by the token limit, in the bot's format; every key fact, no invented
figure, not handed over; or, for a question the documents cannot answer, handed over),
then fewer invented figures, then more of the key facts, then the format. Where the
checks tie and a judge model is configured, the judge decides. ROUGE-L is left out: it
moves with any rewording, so two equally good answers would rarely tie.

The win rate counts a tie as half a win; its 95% interval comes from a seeded
bootstrap over the questions. A candidate that only matches the active version scores
0.5, so a gate on the interval's lower bound does not promote it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from server.evaluation import VariantScore

Outcome = Literal["win", "tie", "loss"]
POINTS: dict[Outcome, float] = {"win": 1.0, "tie": 0.5, "loss": 0.0}
RESAMPLES = 2000
# (question, reference, candidate's answer, active's answer) -> the judge's outcome for
# the candidate, or None when it gave no usable verdict.
Judge = Callable[[str, str, str, str], Outcome | None]


def is_right(answer: dict[str, Any]) -> bool:
    """The answer a customer needed: the key facts and nothing invented, or for a
    question the documents cannot answer, the hand-over. An answer cut off by the token
    limit is not one, whatever it stated on the way: a model stuck repeating its
    sources ("Policy: 200 bonus points" forty times) states the figures and answers
    nobody. Nor is one that breaks the bot's format (`[evaluation] format_patterns`;
    the hand-over is exempt): the bot may not send it as it stands, which is why the
    review queue flags it and the export does not train on it."""
    if answer["finish_reason"] == "length" or not answer["follows_format"]:
        return False
    if not answer["answerable"]:
        return bool(answer["handed_over"])
    return not (answer["missing_facts"] or answer["invented_figures"] or answer["handed_over"])


def merit(answer: dict[str, Any]) -> tuple[bool, int, float, bool]:
    """What the checks say of an answer, best first when sorted descending."""
    facts = answer["facts"]
    found = (len(facts) - len(answer["missing_facts"])) / len(facts) if facts else 1.0
    return (is_right(answer), -len(answer["invented_figures"]), found, answer["follows_format"])


def outcome(candidate: dict[str, Any], active: dict[str, Any]) -> Outcome:
    mine, theirs = merit(candidate), merit(active)
    return "win" if mine > theirs else "loss" if mine < theirs else "tie"


@dataclass
class Comparison:
    candidate: str
    active: str
    questions: list[dict[str, Any]] = field(default_factory=list)
    interval: tuple[float, float] = (0.0, 0.0)
    judge_failures: int = 0  # pairs the judge gave no usable verdict on

    def count(self, kind: Outcome) -> int:
        return sum(1 for question in self.questions if question["outcome"] == kind)

    @property
    def win_rate(self) -> float:
        return sum(POINTS[q["outcome"]] for q in self.questions) / len(self.questions)

    @property
    def newly_wrong(self) -> list[str]:
        """Questions the active version answered right and the candidate does not."""
        return [q["id"] for q in self.questions if q["active_right"] and not q["candidate_right"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "active": self.active,
            "wins": self.count("win"),
            "ties": self.count("tie"),
            "losses": self.count("loss"),
            "win_rate": round(self.win_rate, 4),
            "interval": [round(bound, 4) for bound in self.interval],
            "newly_wrong": self.newly_wrong,
            "judge_failures": self.judge_failures,
            "questions": self.questions,
        }


def compare(
    candidate: VariantScore, active: VariantScore, judge: Judge | None = None
) -> Comparison:
    """Pair the two runs' answers by question id (the same golden set, answered by
    each) and decide every pair."""
    theirs = {answer["id"]: answer for answer in active.answers}
    if not candidate.answers or set(theirs) != {a["id"] for a in candidate.answers}:
        raise ValueError("the two runs must answer the same questions")
    comparison = Comparison(candidate.variant, active.variant)
    for mine in candidate.answers:
        other = theirs[mine["id"]]
        result, decided_by = outcome(mine, other), "checks"
        if result == "tie" and judge is not None:
            verdict = judge(mine["question"], mine["reference"], mine["answer"], other["answer"])
            if verdict is None:
                comparison.judge_failures += 1
            else:
                result, decided_by = verdict, "judge"
        comparison.questions.append(
            {
                "id": mine["id"],
                "question": mine["question"],
                "outcome": result,
                "decided_by": decided_by,
                "candidate_right": is_right(mine),
                "active_right": is_right(other),
                "candidate_answer": mine["answer"],
                "active_answer": other["answer"],
            }
        )
    points = [POINTS[q["outcome"]] for q in comparison.questions]
    comparison.interval = bootstrap_interval(points)
    return comparison


def bootstrap_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of `values` (seeded: the same
    answers give the same interval)."""
    rng = random.Random(0)
    size = len(values)
    means = sorted(sum(rng.choices(values, k=size)) / size for _ in range(RESAMPLES))
    tail = (1 - level) / 2
    return means[int(tail * RESAMPLES)], means[min(RESAMPLES - 1, int((1 - tail) * RESAMPLES))]
