"""`hybrid search QUERY` and `hybrid search --queries FILE.jsonl` (evaluation runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.config import RetrievalMode
from hybrid.errors import InvalidInputError


def search(
    ctx: typer.Context,
    query: Annotated[str | None, typer.Argument(help="What to search for.")] = None,
    k: Annotated[int, typer.Option("-k", min=1, max=1000, help="How many chunks.")] = 5,
    queries: Annotated[
        Path | None,
        typer.Option(help='A JSONL file of {"id", "text"} queries; prints one JSON line each.'),
    ] = None,
    mode: Annotated[
        RetrievalMode | None,
        typer.Option(help="hybrid, dense or lexical (default: retrieval.mode)."),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", help="Only documents whose metadata has KEY=VALUE."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Search the published index version, as the assistant does before answering."""
    if (query is None) == (queries is None):
        raise InvalidInputError("give either a QUERY or --queries FILE.jsonl")
    batch = _read_queries(queries) if queries else []
    metadata = _parse_filters(filters or [])
    bot = current_bot(ctx)
    with stderr.status("Loading the embedder…"):
        quiet_model_libraries()
        from indexes import open_retriever

        retriever = open_retriever(bot)
    if queries:
        for query_id, text in batch:
            hits = retriever.search(text, k, filters=metadata, mode=mode)
            echo_json(
                {
                    "id": query_id,
                    "document_ids": [hit.document_id for hit in hits],
                    "chunk_ids": [hit.chunk_id for hit in hits],
                    "scores": [hit.score for hit in hits],
                }
            )
        return
    assert query is not None
    hits = retriever.search(query, k, filters=metadata, mode=mode)
    if as_json:
        echo_json({"query": query, "hits": hits})
        return
    if not hits:
        typer.echo("No matching chunks.")
    for number, hit in enumerate(hits, start=1):
        where = " > ".join(hit.heading_path) or hit.title
        typer.echo(f"[{number}] {hit.score:.4f}  {hit.document_id} ({hit.source}) · {where}")
        preview = " ".join(hit.text.split())
        typer.echo(f"    {preview[:200]}{'…' if len(preview) > 200 else ''}")


def _read_queries(file: Path) -> list[tuple[Any, str]]:
    """Every query of the file, checked before any search runs, errors naming the line."""
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{file}: cannot read: {exc}") from exc
    batch = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{file}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or "id" not in record:
            raise InvalidInputError(f'{file}:{number}: expected an object with "id" and "text"')
        if not isinstance(record.get("text"), str) or not record["text"].strip():
            raise InvalidInputError(f"{file}:{number}: field `text` must be a non-empty string")
        batch.append((record["id"], record["text"]))
    return batch


def _parse_filters(filters: list[str]) -> dict[str, str]:
    parsed = {}
    for item in filters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"bad --filter {item!r}", hint="use KEY=VALUE, e.g. region=us")
        parsed[key] = value
    return parsed
