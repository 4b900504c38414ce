from __future__ import annotations

from typing import Annotated

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.types import AdapterRef, Hit


def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The customer's question.")],
    no_retrieval: Annotated[
        bool,
        typer.Option("--no-retrieval", help="Answer from the model alone, without the documents."),
    ] = False,
    adapter: Annotated[
        str | None,
        typer.Option(
            help="Answer in the style of this adapter: NAME (its active version) or NAME@VERSION."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer one question as the bot would: search the documents, then generate an
    answer that cites them."""
    ref = AdapterRef.parse(adapter) if adapter else None
    bot = current_bot(ctx)
    with stderr.status("Loading the models (the first run converts the base model, ~30 s)…"):
        quiet_model_libraries()
        from server import open_assistant

        assistant = open_assistant(bot, retrieval=not no_retrieval)
    with assistant, stderr.status("Answering…"):
        answer = assistant.answer(question, adapter=ref)
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
            "ungrounded_figures": answer.ungrounded_figures,
        }
        echo_json(payload)
        return
    typer.echo(answer.text)
    _print_citations(answer.citations)
    if answer.ungrounded_figures:
        figures = ", ".join(answer.ungrounded_figures)
        stderr.print(f"[yellow]Check before relying on it: {figures} appear in no source.[/]")
    stderr.print(
        f"[dim]{bot.config.models.base}{f' + {answer.adapter}' if answer.adapter else ''} · "
        f"{usage['prompt_tokens']} prompt + "
        f"{usage['completion_tokens']} answer tokens · {answer.seconds:.1f} s[/]",
    )


def _print_citations(citations: list[Hit]) -> None:
    if citations:
        typer.echo("\nSources:")
        for number, hit in enumerate(citations, start=1):
            typer.echo(f"  [{number}] {hit.title} ({hit.source})")
