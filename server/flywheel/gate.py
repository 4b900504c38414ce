"""The promotion gate: a candidate replaces the active version only if every rule holds.
Closed by default: a measure that is missing (no unanswerable golden question to test
hand-overs on, a judge that did not answer) fails its rule rather than passing it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from hybrid.config import RetrainSettings
from server.flywheel.comparison import Comparison

# Raised whenever what the rules or the comparison decide changes (2: an answer cut off by
# the token limit is not right; 3: nor is one that breaks the format), so that verdicts
# stored under older rules are not reused.
RULES_REVISION = 3
# (summary key, tolerance setting, higher is better)
HELD_MEASURES = (
    ("key_facts", "key_facts_tolerance", True),
    ("invented_figures", "invented_figures_tolerance", False),
    ("handover_recall", "handover_tolerance", True),
    ("answerable_handed_over", "handover_tolerance", False),
    ("format_adherence", "format_tolerance", True),
)


@dataclass(frozen=True)
class Rule:
    name: str
    passed: bool
    detail: str


@dataclass
class GateReport:
    rules: list[Rule] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.rules) and all(rule.passed for rule in self.rules)

    @property
    def failed(self) -> list[Rule]:
        return [rule for rule in self.rules if not rule.passed]

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "rules": [asdict(rule) for rule in self.rules]}


def judge_candidate(
    comparison: Comparison,
    candidate: dict[str, Any],
    active: dict[str, Any],
    probe: tuple[dict[str, Any], dict[str, Any]],
    settings: RetrainSettings,
    *,
    judged: bool = False,
) -> GateReport:
    """Apply every rule. `candidate` and `active` are the golden-set summaries
    (VariantScore.summary()), `probe` the base model's and the candidate's forgetting
    probe summaries; `judged`: a judge model was configured (then it must have answered)."""
    report = GateReport()
    for key, tolerance_name, higher_is_better in HELD_MEASURES:
        tolerance = getattr(settings, tolerance_name)
        report.rules.append(_held(key, candidate[key], active[key], tolerance, higher_is_better))
    newly_wrong = comparison.newly_wrong
    allowed = int(settings.newly_wrong_tolerance * len(comparison.questions))
    which = f": {', '.join(newly_wrong[:10])}" if newly_wrong else ""
    report.rules.append(
        Rule(
            "newly_wrong",
            len(newly_wrong) <= allowed,
            f"{len(newly_wrong)} question(s) the active version got right are now wrong "
            f"(at most {allowed} allowed){which}",
        )
    )
    low, high = comparison.interval
    report.rules.append(
        Rule(
            "win_rate",
            low > settings.min_win_rate,
            f"win rate {comparison.win_rate:.3f}, 95% interval [{low:.3f}, {high:.3f}] "
            f"({comparison.count('win')} wins, {comparison.count('tie')} ties, "
            f"{comparison.count('loss')} losses); its lower bound must exceed "
            f"{settings.min_win_rate}",
        )
    )
    base_probe, candidate_probe = (summary["key_facts"] for summary in probe)
    report.rules.append(
        _held(
            "forgetting_probe",
            candidate_probe,
            base_probe,
            settings.forgetting_tolerance,
            True,
            against="the base model",
        )
    )
    if judged:
        failures = comparison.judge_failures
        report.rules.append(
            Rule(
                "judge",
                failures == 0,
                f"the judge gave no usable verdict on {failures} pair(s)"
                if failures
                else "the judge decided every pair the checks tied",
            )
        )
    return report


def _held(
    name: str,
    candidate: dict[str, Any],
    reference: dict[str, Any],
    tolerance: float,
    higher_is_better: bool,
    *,
    against: str = "the active version",
) -> Rule:
    """The candidate's share is at most `tolerance` worse than the reference's."""
    mine, theirs = candidate["share"], reference["share"]
    if mine is None or theirs is None:
        return Rule(name, False, f"not measured (no question it applies to): {name} fails")
    worse_by = (theirs - mine) if higher_is_better else (mine - theirs)
    return Rule(
        name,
        worse_by <= tolerance + 1e-9,
        f"{mine:.1%} ({candidate['count']}/{candidate['of']}) against {theirs:.1%} "
        f"({reference['count']}/{reference['of']}) for {against}; "
        f"{'higher' if higher_is_better else 'lower'} is better, tolerance {tolerance:.1%}",
    )
