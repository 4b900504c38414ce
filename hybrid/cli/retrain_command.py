"""`hybrid retrain`."""

from __future__ import annotations

from typing import Annotated

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr

# Exit statuses a scheduler can act on (1 stays "failed", 2 "bad usage", as everywhere).
EXIT_STATUS = {"promoted": 0, "nothing_to_do": 3, "rejected": 4}
EXIT_BUSY = 5


def retrain(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Option(help="The adapter to retrain (default: \\[retrain] adapter, or the active)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Retrain the style adapter from the conversations the bot really had, and promote
    the new version only if the gate passes: export the curated answers since the active
    version's data, add the earlier training data, lint, train, compare with the active
    version on the golden set (and with the base model on a forgetting probe), and
    promote only if nothing regressed beyond the \\[retrain] tolerances and the win
    rate's 95% interval lies above 0.5. The gate report is stored with the new version.

    Exit status: 0 promoted, 3 nothing to do, 4 rejected, 5 busy, 1 failed."""
    from hybrid.errors import BusyError

    bot = current_bot(ctx)
    quiet_model_libraries()
    from server.flywheel.retrain import retrain as run_retrain

    def report(stage: str, message: str) -> None:
        stderr.print(f"[bold]{stage}[/]: {message}")

    try:
        outcome = run_retrain(bot, name, report)
    except BusyError as exc:
        stderr.print(f"[bold red]busy:[/] {exc}")
        raise typer.Exit(EXIT_BUSY) from None
    if as_json:
        echo_json(outcome.to_dict())
    else:
        stages = ", ".join(f"{stage} {seconds:.0f} s" for stage, seconds in outcome.seconds.items())
        typer.echo(outcome.summary())
        typer.echo(f"time per stage: {stages}")
    raise typer.Exit(EXIT_STATUS[outcome.status])
