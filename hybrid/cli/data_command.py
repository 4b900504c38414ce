"""`hybrid data lint`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr

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
