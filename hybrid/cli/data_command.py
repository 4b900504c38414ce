"""`hybrid data lint` and `hybrid data export`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.staging import write_file_atomically

if TYPE_CHECKING:
    from training import DataProblem

app = typer.Typer(help="Check and prepare training data.", no_args_is_help=True)


@app.command()
def lint(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Training data, JSONL (OpenAI chat or other).")],
    eval_file: Annotated[
        Path | None,
        typer.Option("--eval", help="Evaluation data: checked too, and for overlap with FILE."),
    ] = None,
    redact_to: Annotated[
        Path | None,
        typer.Option("--redact", help="Write FILE with personal data replaced to this path."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Find what would make FILE train badly: bad lines, wrong roles, empty turns,
    duplicates, contradictions, examples too long, evaluation overlap, personal data.
    Exits 1 when there are errors (`hybrid train` refuses such a file)."""
    from rich.console import Console
    from rich.table import Table

    bot = current_bot(ctx)
    settings = bot.config.training
    with stderr.status("Loading the tokenizer…"):
        quiet_model_libraries()
        from training import lint_for_training, load_tokenizer, write_redacted

        tokenizer = load_tokenizer(
            bot.config.models.base, base_dir=bot.root, models_dir=bot.models_dir
        )
    report = lint_for_training(
        file,
        eval_file=eval_file,
        tokenizer=tokenizer,
        settings=settings,
        system_prompt=bot.config.bot.system_prompt,
    )
    if redact_to is not None:
        changed = write_redacted(report.train, redact_to, settings.pii_allowed)
        stderr.print(f"Wrote {redact_to}: {changed} message(s) redacted.")
    if as_json:
        echo_json(report.to_dict())
    else:
        _print_problems(report.problems)
        info = report.to_dict()
        formats = ", ".join(f"{count} {name}" for name, count in info["formats"].items())
        typer.echo(f"\n{file}: {info['examples']} examples ({formats or 'none readable'})")
        lengths = info["token_lengths"]
        if lengths:
            typer.echo(
                f"tokens per example: min {lengths['min']}, median {lengths['median']}, "
                f"p95 {lengths['p95']}, max {lengths['max']} "
                f"(training.max_seq_length = {settings.max_seq_length})"
            )
        if info["counts"]:
            table = Table("check", "errors", "warnings")
            for check, counts in sorted(info["counts"].items()):
                table.add_row(check, str(counts["error"]), str(counts["warning"]))
            Console(highlight=False).print(table)
        verdict = "OK" if report.ok else "FAILED"
        typer.echo(f"{verdict}: {len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="Where to write the examples (JSONL, OpenAI chat).")],
    from_logs: Annotated[
        bool, typer.Option("--from-logs", help="Curate the answers the bot gave (the log).")
    ] = False,
    min_rating: Annotated[
        int, typer.Option(min=1, max=5, help="Keep answers rated at least this (1-5).")
    ] = 4,
    since: Annotated[
        str | None,
        typer.Option(help="Only answers from this date or time on (ISO 8601, e.g. 2026-12-01)."),
    ] = None,
    adapter: Annotated[
        str | None, typer.Option(help="Only answers of this adapter: NAME or NAME@VERSION.")
    ] = None,
    golden: Annotated[
        Path | None,
        typer.Option(help="Leave out its questions (default: data/golden.jsonl, if present)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Turn the answers the bot really gave into training data: answers rated at least
    --min-rating and every corrected one (the correction replaces the answer), each in
    the prompt it was served with, sources included. Duplicates, golden-set questions,
    failed or cut-off answers, answers with an invented figure or a broken format
    (unless corrected) and answers citing sources no longer published are left out and
    counted; personal data is redacted. The result is also kept as an immutable
    snapshot under .hybrid/datasets/. Exits 1 when no answer passes."""
    from hybrid.types import AdapterRef
    from server.flywheel.curation import ExportRequest, export_from_logs

    if not from_logs:
        raise typer.BadParameter("say where the examples come from: --from-logs")
    bot = current_bot(ctx)
    request = ExportRequest(
        min_rating=min_rating,
        since=_timestamp(since) if since else None,
        adapter=AdapterRef.parse(adapter) if adapter else None,
        golden=golden,
    )
    result = export_from_logs(bot, request)
    for problem in result.unreadable:
        stderr.print(f"[yellow]warning:[/] interaction log row {problem}: left out")
    if result.snapshot is not None:
        write_file_atomically(out, result.snapshot.data_file.read_bytes())
    if as_json:
        echo_json({**result.to_dict(), "out": str(out) if result.snapshot else None})
    else:
        removed = ", ".join(f"{count} {rule}" for rule, count in result.removed.items() if count)
        typer.echo(
            f"{result.considered} logged answer(s): {result.kept} kept, "
            f"removed: {removed or 'none'}; {result.redacted} redacted"
        )
        if result.snapshot is not None:
            typer.echo(f"wrote {out} (snapshot {result.snapshot.id})")
    if result.snapshot is None:
        stderr.print(
            "No answer passed: nothing was written. Answers need a rating of at least "
            f"{min_rating} or a correction (POST /v1/feedback)."
        )
        raise typer.Exit(1)


def _timestamp(text: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-12-01 or 2026-12-01T09:30)",
            param_hint="--since",
        ) from None


SHOWN_PER_CHECK = 10


def _print_problems(problems: list[DataProblem]) -> None:
    """Every problem, but at most SHOWN_PER_CHECK of one kind (--json has them all)."""
    shown: Counter[tuple[str, str]] = Counter()
    for problem in problems:
        kind = (problem.file, problem.check)
        shown[kind] += 1
        if shown[kind] <= SHOWN_PER_CHECK:
            typer.echo(str(problem))
    for (file, check), count in shown.items():
        if count > SHOWN_PER_CHECK:
            typer.echo(f"{file}: … and {count - SHOWN_PER_CHECK} more {check} problem(s)")
