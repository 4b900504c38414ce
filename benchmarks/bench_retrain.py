"""The retrain loop on the sample bot with the embedded models: a simulated week through
the real server (benchmarks/week.py), then one `hybrid retrain`, stage by stage, with
the export's counts per rule and the gate's verdict on every rule. Then two candidates
the gate must not promote, judged against the active version on the same golden set: one
damaged (trained on the same data with a learning rate 100x the setting) and one that
only matches the active version (the active version itself)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, hybrid_serve
from benchmarks.week import SEED_SIZE, launch, run_week
from hybrid.bot import Bot
from hybrid.config import with_training
from hybrid.types import AdapterRef
from server.evaluation import read_golden
from server.flywheel.retrain import RetrainOutcome, retrain
from server.flywheel.verdict import Verdict, judge_candidate_against
from training import AdapterRegistry, TrainRequest, train_adapter

DAMAGE = 100  # times the configured learning rate


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        bot = launch(Path(scratch) / "bot")
        launched = time.perf_counter() - started
        with hybrid_serve(bot) as url:
            started = time.perf_counter()
            week = run_week(bot, url)
            served = time.perf_counter() - started
        figures = [
            Figure(
                "launch: sync + train kestrel@1",
                round(launched, 1),
                "s",
                f"{SEED_SIZE} seed conversations, with retrieval",
            ),
            Figure(
                "the week: questions answered and rated",
                round(served, 1),
                "s",
                f"{week.asked} questions, 8 at a time; ratings {dict(week.ratings)}",
            ),
        ]
        outcome = retrain(bot)
        assert outcome.export is not None
        export = outcome.export.to_dict()
        figures.append(
            Figure(
                "retrain: outcome",
                1 if outcome.status == "promoted" else 0,
                "promoted",
                outcome.summary(),
            )
        )
        figures += [
            Figure(f"retrain stage: {stage}", round(seconds, 1), "s", "2 cores")
            for stage, seconds in outcome.seconds.items()
        ]
        figures.append(Figure("retrain: total", round(sum(outcome.seconds.values()), 1), "s", ""))
        figures.append(
            Figure("export: kept", export["kept"], "lines", f"of {export['considered']} logged")
        )
        figures += [
            Figure(f"export removed: {rule}", count, "lines", "")
            for rule, count in export["removed"].items()
        ]
        if outcome.gate is not None:
            figures += [
                Figure(f"gate rule: {rule['name']}", int(rule["passed"]), "passed", rule["detail"])
                for rule in outcome.gate["rules"]
            ]
        active = _active(bot)
        golden = read_golden(bot.data_dir / "golden.jsonl")
        damaged = _damaged(bot, outcome)
        figures += _verdict_figures(bot, "damaged candidate", damaged, active, golden)
        figures += _verdict_figures(bot, "matching candidate", active, active, golden)
    return figures


def _active(bot: Bot) -> AdapterRef:
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        return registry.get(AdapterRef("kestrel")).ref


def _damaged(bot: Bot, outcome: RetrainOutcome) -> AdapterRef:
    """Trained on the retrain's own data with the learning rate DAMAGE times too high."""
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        data = registry.get(outcome.candidate).manifest["dataset"]
    rate = bot.config.training.learning_rate * DAMAGE
    damaged = Bot(bot.root, with_training(bot.config, learning_rate=min(rate, 1.0)))
    request = TrainRequest(bot.state_dir / "datasets" / data / "data.jsonl", name="damaged")
    return train_adapter(damaged, request).adapter.ref


def _verdict_figures(
    bot: Bot, label: str, candidate: AdapterRef, active: AdapterRef, golden: list
) -> list[Figure]:
    verdict: Verdict = judge_candidate_against(bot, candidate, active, golden)
    failed = [rule.name for rule in verdict.gate.failed]
    low, high = verdict.comparison.interval
    return [
        Figure(f"{label}: promoted", int(verdict.gate.passed), "",
               f"{candidate} against {active}; failed rules: {', '.join(failed) or 'none'}"),
        Figure(f"{label}: win rate", round(verdict.comparison.win_rate, 3), "",
               f"95% interval [{low:.3f}, {high:.3f}]"),
    ] + [
        Figure(f"{label}: {rule.name}", int(rule.passed), "passed", rule.detail)
        for rule in verdict.gate.rules
    ]  # fmt: skip
