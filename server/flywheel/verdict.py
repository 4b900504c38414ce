"""A candidate's verdict: answer the golden set with the candidate and the version it
would replace side by side, and the forgetting probe with the candidate and the base
model, all in one batched run; compare the pairs (and let the judge break ties); apply
the gate. `hybrid eval --compare` shows it, `hybrid retrain` acts on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from hybrid.bot import Bot
from hybrid.types import AdapterRef
from server.eval_report import write_report
from server.evaluation import Arm, GoldenCase, VariantScore, evaluate_arms, read_golden
from server.flywheel.comparison import Comparison, compare
from server.flywheel.gate import GateReport, judge_candidate
from server.flywheel.judge import openai_judge
from server.flywheel.report import gate_section

# Arm labels: the keys of Verdict.scores.
CANDIDATE, ACTIVE = "candidate", "active"
BASE_PROBE, CANDIDATE_PROBE = "base on the probe", "candidate on the probe"


def forgetting_probe() -> Path:
    """General questions the embedded base model answers right (arithmetic, rewriting,
    short general knowledge), shipped with hybrid."""
    return Path(str(files("server.flywheel") / "forgetting_probe.jsonl"))


@dataclass
class Verdict:
    candidate: AdapterRef
    active: AdapterRef
    scores: dict[str, VariantScore]
    comparison: Comparison
    gate: GateReport

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.gate.to_dict(),
            "candidate": str(self.candidate),
            "active": str(self.active),
            "summaries": {label: score.summary() for label, score in self.scores.items()},
            "comparison": self.comparison.to_dict(),
        }

    def write_html(self, target: Path, title: str) -> Path:
        preface = gate_section(self.gate, self.comparison)
        return write_report(list(self.scores.values()), target, title, preface=preface)


def judge_candidate_against(
    bot: Bot,
    candidate: AdapterRef,
    active: AdapterRef,
    golden: list[GoldenCase],
    progress: Callable[[int, int], None] | None = None,
) -> Verdict:
    """Evaluate, compare and gate `candidate` against `active` on `golden`."""
    probe = read_golden(forgetting_probe())
    arms = [
        Arm(CANDIDATE, "adapter+rag", candidate, golden),
        Arm(ACTIVE, "adapter+rag", active, golden),
        Arm(BASE_PROBE, "base", None, probe),
        Arm(CANDIDATE_PROBE, "adapter", candidate, probe),
    ]
    total, answered = sum(len(arm.cases) for arm in arms), 0

    def counted(label: str, done: int) -> None:
        nonlocal answered
        answered += 1
        if progress:
            progress(answered, total)

    scores = {score.variant: score for score in evaluate_arms(bot, arms, counted)}
    judge_settings = bot.config.evaluation.judge
    judge = openai_judge(judge_settings) if judge_settings else None
    comparison = compare(scores[CANDIDATE], scores[ACTIVE], judge)
    summaries = {label: score.summary() for label, score in scores.items()}
    gate = judge_candidate(
        comparison,
        summaries[CANDIDATE],
        summaries[ACTIVE],
        (summaries[BASE_PROBE], summaries[CANDIDATE_PROBE]),
        bot.config.retrain,
        judged=judge is not None,
    )
    return Verdict(candidate, active, scores, comparison, gate)
