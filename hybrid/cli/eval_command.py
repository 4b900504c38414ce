"""`hybrid eval`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from hybrid.bot import Bot
from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.cli.progress import ProgressReport
from hybrid.types import AdapterRef


def evaluate(
    ctx: typer.Context,
    golden: Annotated[
        Path,
        typer.Argument(
            help='Golden set, JSONL: {"question", "reference", "doc_id"?, "facts"?, "answerable"?}.'
        ),
    ],
    adapter: Annotated[
        str | None, typer.Option(help="The adapter for the adapter variants: NAME[@VERSION].")
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: base, base+rag, prompt, prompt+rag, adapter, adapter+rag "
            "(default: base+rag, and adapter+rag with --adapter)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    compare: Annotated[
        str | None,
        typer.Option(
            help="Compare --adapter (the candidate) with this version, NAME[@VERSION] (NAME: "
            "its active version): win/tie/loss per question, the win rate's 95% interval, "
            "the forgetting probe, and the retrain gate's verdict.",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write the HTML report here (default: with the adapter version, or in "
            ".hybrid/evaluations/)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a golden set in each variant and score the answers: key facts stated,
    figures invented (in no source and not in the question), hand-overs on questions
    the documents cannot answer (and on ones they can), format adherence, ROUGE-L, the
    needed document cited, tokens and latency. Writes an HTML report."""
    from rich.console import Console
    from rich.table import Table

    bot = current_bot(ctx)
    ref = AdapterRef.parse(adapter) if adapter else None
    if compare is not None:
        if ref is None:
            raise typer.BadParameter(
                "--compare needs --adapter: the candidate", param_hint="--adapter"
            )
        _compare(bot, golden, ref, AdapterRef.parse(compare), limit, report, as_json)
        return
    if variants:
        chosen = [variant.strip() for variant in variants.split(",") if variant.strip()]
    else:
        chosen = ["base+rag", "adapter+rag"] if ref else ["base+rag"]
    with stderr.status("Loading the models…"):
        quiet_model_libraries()
        from server.eval_report import write_report
        from server.evaluation import evaluate as run_evaluation
        from server.evaluation import read_golden

        cases = read_golden(golden)[:limit]
    with ProgressReport("Answering") as progress_report:

        def progress(variant: str, done: int) -> None:
            progress_report.update(done, len(cases), description=f"Answering ({variant})")

        scores = run_evaluation(bot, cases, chosen, ref, progress)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if report is None:
        folder = bot.state_dir / "evaluations"
        if ref is not None and any(v.startswith("adapter") for v in chosen):
            from server.compose import find_adapter

            folder = find_adapter(bot, ref).path / "evaluations"
        report = folder / f"eval-{stamp}.html"
    write_report(scores, report, f"{bot.config.bot.name}: {golden.name}, {stamp}")
    if as_json:
        echo_json([{**s.summary(), "answers": s.answers} for s in scores])
        stderr.print(f"report: {report}")
        return
    table = Table(
        "variant", "key facts", "invented figures", "unanswerable handed over",
        "answerable handed over", "format", "ROUGE-L", "prompt tokens", "s/answer",
    )  # fmt: skip
    for score in scores:
        summary = score.summary()
        table.add_row(
            summary["variant"] + (f" ({ref})" if summary["variant"].startswith("adapter") else ""),
            *(_share(summary[key]) for key in SHARES),
            _number(summary["rouge_l"], ".3f"),
            _number(summary["prompt_tokens"], ".0f"),
            _number(summary["seconds_per_answer"], ".1f"),
        )
    Console(highlight=False).print(table)
    typer.echo(f"{len(cases)} questions from {golden}; report: {report}")


SHARES = (
    "key_facts",
    "invented_figures",
    "handover_recall",
    "answerable_handed_over",
    "format_adherence",
)


def _share(value: dict) -> str:
    if value["share"] is None:
        return "–"
    return f"{value['share']:.0%} ({value['count']}/{value['of']})"


def _number(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _compare(
    bot: Bot,
    golden: Path,
    candidate: AdapterRef,
    active: AdapterRef,
    limit: int | None,
    report: Path | None,
    as_json: bool,
) -> None:
    with stderr.status("Loading the models…"):
        quiet_model_libraries()
        from server.compose import find_adapter
        from server.evaluation import read_golden
        from server.flywheel.verdict import judge_candidate_against

        cases = read_golden(golden)[:limit]
        candidate = find_adapter(bot, candidate).ref
        active = find_adapter(bot, active).ref
    with ProgressReport("Answering") as progress_report:
        verdict = judge_candidate_against(bot, candidate, active, cases, progress_report.update)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = report or find_adapter(bot, candidate).path / "evaluations" / f"compare-{stamp}.html"
    verdict.write_html(report, f"{bot.config.bot.name}: {candidate} against {active}, {stamp}")
    if as_json:
        echo_json(verdict.to_dict())
        stderr.print(f"report: {report}")
        return
    comparison = verdict.comparison
    low, high = comparison.interval
    typer.echo(
        f"{candidate} against {active} on {len(cases)} questions: {comparison.count('win')} "
        f"wins, {comparison.count('tie')} ties, {comparison.count('loss')} losses; win rate "
        f"{comparison.win_rate:.3f} (95% interval {low:.3f}-{high:.3f})"
    )
    for rule in verdict.gate.rules:
        typer.echo(f"  {'pass' if rule.passed else 'FAIL'}  {rule.name}: {rule.detail}")
    gate = "passes" if verdict.gate.passed else "fails"
    typer.echo(f"The retrain gate {gate}; report: {report}")
