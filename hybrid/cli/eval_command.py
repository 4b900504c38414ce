"""`hybrid eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.cli.progress import ProgressReport
from hybrid.types import AdapterRef


def evaluate(
    ctx: typer.Context,
    golden: Annotated[
        Path, typer.Argument(help='Golden set, JSONL: {"question", "reference", "doc_id"?}.')
    ],
    adapter: Annotated[
        str | None, typer.Option(help="The adapter for the adapter variants: NAME[@VERSION].")
    ] = None,
    variants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated: base, base+rag, adapter, adapter+rag "
            "(default: base+rag, and adapter+rag with --adapter)."
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a golden set and score each variant: format adherence (the `evaluation`
    rules of hybrid.toml), ROUGE-L against the references, and how often the needed
    document was among the citations."""
    from rich.console import Console
    from rich.table import Table

    bot = current_bot(ctx)
    ref = AdapterRef.parse(adapter) if adapter else None
    if variants:
        chosen = [variant.strip() for variant in variants.split(",") if variant.strip()]
    else:
        chosen = ["base+rag", "adapter+rag"] if ref else ["base+rag"]
    with stderr.status("Loading the models…"):
        quiet_model_libraries()
        from server.evaluation import evaluate as run_evaluation
        from server.evaluation import read_golden

        cases = read_golden(golden)[:limit]
    with ProgressReport("Answering") as report:

        def progress(variant: str, done: int) -> None:
            report.update(done, len(cases), description=f"Answering ({variant})")

        scores = run_evaluation(bot, cases, chosen, ref, progress)
    if as_json:
        echo_json([{**s.summary(), "answers": s.answers} for s in scores])
        return
    table = Table("variant", "format adherence", "ROUGE-L", "cited the document", "s/answer")
    for score in scores:
        summary = score.summary()
        table.add_row(
            summary["variant"]
            + (f" ({ref})" if ref and summary["variant"].startswith("a") else ""),
            f"{summary['format_adherence']:.1%}",
            f"{summary['rouge_l']:.3f}",
            f"{summary['cited_the_document']:.1%}" if "rag" in summary["variant"] else "–",
            f"{summary['seconds_per_answer']:.1f}",
        )
    Console(highlight=False).print(table)
    typer.echo(f"{len(cases)} questions from {golden}")
