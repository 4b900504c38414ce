"""`hybrid index sync | status | versions | rollback | check`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.cli.progress import ProgressReport

app = typer.Typer(
    help="Keep the document index in step with the docs folder.", no_args_is_help=True
)


@app.command()
def sync(
    ctx: typer.Context,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Sync only these files or folders inside the docs folder."),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(help="Re-chunk everything and rebuild the indexes from cached embeddings."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Make the index match the docs folder: add, update and delete documents, embedding
    only chunks not embedded before, and publish the result as a new version."""
    bot = current_bot(ctx)
    with stderr.status("Loading the embedder…"):
        quiet_model_libraries()
        from indexes import embedder_for_bot, sync_index

        embedder = embedder_for_bot(bot)
    with ProgressReport("Embedding chunks") as report:
        summary = sync_index(
            bot, embedder, paths=paths or (), rebuild=rebuild, progress=report.update
        )
    if as_json:
        echo_json(summary.to_dict())
        return
    if summary.published:
        was = f" (was {summary.previous})" if summary.previous else ""
        typer.echo(f"Published index version {summary.version}{was} in {summary.seconds:.1f} s.")
    else:
        typer.echo(f"Nothing changed: index version {summary.version} stays published.")
    typer.echo(
        f"  documents: {len(summary.added)} added, {len(summary.updated)} updated, "
        f"{len(summary.deleted)} deleted, {summary.unchanged} unchanged"
    )
    typer.echo(
        f"  chunks:    {summary.chunks_embedded} embedded, "
        f"{summary.chunks_reused} reused from the embedding cache"
    )
    if summary.problems:
        typer.echo(f"  skipped {len(summary.problems)} file(s) or line(s); nothing indexed "
                   "from them before was removed:")  # fmt: skip
        for problem in summary.problems:
            typer.echo(f"    {problem}")


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """The published version and what it holds."""
    from indexes import index_status

    info = index_status(current_bot(ctx))
    if as_json:
        echo_json(info)
        return
    if info["published"] is None:
        typer.echo("Nothing indexed yet. Run `hybrid index sync`.")
        return
    typer.echo(
        f"Index version {info['published']} (published {_when(info['published_at'])}): "
        f"{info['documents']} documents, {info['chunks']} chunks, {info['kind']} index, "
        f"embedder {info['embedder']}; {info['cached_embeddings']} embeddings cached."
    )
    if info["embedder"] != info["configured_embedder"]:
        typer.echo(f"The config now names {info['configured_embedder']}: the next sync re-embeds.")
    if info["unfinished"]:
        typer.echo(f"Unfinished (interrupted) versions: {info['unfinished']}; the next sync "
                   "removes them.")  # fmt: skip


@app.command()
def versions(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every kept version, oldest first; the current one is marked *."""
    from indexes import index_versions

    rows = index_versions(current_bot(ctx))
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("No index versions yet. Run `hybrid index sync`.")
    for row in rows:
        mark = "*" if row["current"] else " "
        changes = ", ".join(f"{n} {name}" for name, n in row["changes"].items() if n)
        typer.echo(
            f"{mark} {row['version']:>4}  {row['status']:<9}  {_when(row['created_at'])}  "
            f"{row['document_count'] or 0} docs, {row['chunk_count'] or 0} chunks"
            f"{'  (' + changes + ')' if changes else ''}"
        )


@app.command()
def rollback(
    ctx: typer.Context,
    version: Annotated[
        int | None,
        typer.Argument(help="The version to publish again (default: the previous one)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish an earlier version again, at once (searches switch atomically)."""
    from indexes import rollback_index

    published = rollback_index(current_bot(ctx), version)
    if as_json:
        echo_json({"published": published})
        return
    typer.echo(f"Index version {published} is published again.")


@app.command()
def check(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Prove that the store, the FTS index and the published FAISS version agree.
    Exits with status 1 when they do not."""
    from indexes import check_index

    report = check_index(current_bot(ctx))
    if as_json:
        echo_json(report.to_dict())
    else:
        verdict = "consistent" if report.ok else "NOT consistent"
        typer.echo(f"Index version {report.version}: {verdict}.")
        for line in (*report.problems, *report.notes):
            typer.echo(f"  - {line}")
        if report.repair:
            typer.echo(f"Repair: {report.repair}")
    if not report.ok:
        raise typer.Exit(1)


def _when(timestamp: Any) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def calibrate(
    ctx: typer.Context,
    golden: Annotated[
        Path, typer.Argument(help='Golden set with unanswerable lines ("answerable": false).')
    ],
    max_false: Annotated[
        float,
        typer.Option(min=0.0, max=0.5, help="Share of answerable questions it may hand over."),
    ] = 0.05,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the threshold; leave hybrid.toml as it is.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Choose retrieval.handover_below: below it, the best chunk is too far from the
    question to answer from, and the bot hands over (bot.handover) without generating.
    The threshold hands over as many of GOLDEN's unanswerable questions as it can while
    handing over at most --max-false of its answerable ones; written to hybrid.toml."""
    from dataclasses import asdict

    from hybrid.config import write_setting

    bot = current_bot(ctx)
    with stderr.status("Loading the embedder…"):
        quiet_model_libraries()
        from indexes import calibrate_handover, open_retriever
        from server.evaluation import read_golden

        cases = read_golden(golden)
        retriever = open_retriever(bot)
    result = calibrate_handover(
        retriever,
        [case.question for case in cases if case.answerable],
        [case.question for case in cases if not case.answerable],
        max_false=max_false,
    )
    if not dry_run:
        write_setting(bot.config_file, "retrieval", "handover_below", result.threshold)
    if as_json:
        echo_json({**asdict(result), "written": not dry_run})
        return
    typer.echo(
        f"retrieval.handover_below = {result.threshold}: hands over "
        f"{result.handed_over_unanswerable}/{result.unanswerable} unanswerable and "
        f"{result.handed_over_answerable}/{result.answerable} answerable questions of "
        f"{golden.name}" + ("" if dry_run else f"; written to {bot.config_file}")
    )
