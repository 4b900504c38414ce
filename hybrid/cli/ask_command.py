from __future__ import annotations

from typing import Annotated

import msgspec
import typer
from rich.console import Console

from hybrid.cli.context import current_bot
from hybrid.types import Hit


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The customer's question.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """Answer one question as the bot would."""
    bot = current_bot(ctx)
    status = Console(stderr=True)
    with status.status("Loading the base model (the first run converts it, ~30 s)…"):
        _quiet_transformers()
        from server import open_assistant

        assistant = open_assistant(bot)
    with status.status("Answering…"):
        answer = assistant.answer(question)
    usage = {
        "prompt_tokens": answer.generation.prompt_tokens,
        "completion_tokens": answer.generation.completion_tokens,
    }
    if as_json:
        payload = {
            "question": answer.question,
            "answer": answer.text,
            "citations": answer.citations,
            "model": bot.config.models.base,
            "adapter": str(answer.adapter) if answer.adapter else None,
            "finish_reason": answer.generation.finish_reason,
            "usage": usage,
            "seconds": round(answer.seconds, 3),
        }
        typer.echo(msgspec.json.encode(payload).decode())
        return
    typer.echo(answer.text)
    _print_citations(answer.citations)
    status.print(
        f"[dim]{bot.config.models.base} · {usage['prompt_tokens']} prompt + "
        f"{usage['completion_tokens']} answer tokens · {answer.seconds:.1f} s[/]",
        highlight=False,
        soft_wrap=True,
    )


def _print_citations(citations: list[Hit]) -> None:
    if citations:
        typer.echo("\nSources:")
        for number, hit in enumerate(citations, start=1):
            typer.echo(f"  [{number}] {hit.title} ({hit.source})")


def _quiet_transformers() -> None:
    """Our spinner is the progress display; transformers' own bars would tear through it."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()
