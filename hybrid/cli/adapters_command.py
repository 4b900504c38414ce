"""`hybrid adapters list | show | promote | rollback | merge | export`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.types import AdapterRef

app = typer.Typer(help="The style adapters of this bot, by name and version.", no_args_is_help=True)


def _registry(ctx: typer.Context):
    from training import AdapterRegistry

    bot = current_bot(ctx)
    return AdapterRegistry(bot.database, bot.adapters_dir)


@app.command("list")
def list_adapters(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this adapter's versions.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every adapter version with its status (candidate, active, retired)."""
    with _registry(ctx) as registry:
        records = registry.list(name)
    if as_json:
        echo_json([record.to_dict() for record in records])
        return
    if not records:
        typer.echo("No adapters yet: train one with `hybrid train FILE --name NAME`.")
    for record in records:
        metrics = record.manifest.get("metrics", {})
        loss = metrics.get("best_eval_loss")
        if loss is None:
            loss = metrics.get("final_train_loss")
        created = dt.datetime.fromtimestamp(record.created_at).strftime("%Y-%m-%d %H:%M")
        marker = "*" if record.status == "active" else " "
        line = f"{marker} {record.name}@{record.version:<4} {record.status:<9} {created}"
        typer.echo(line + (f"  loss {loss:.3f}" if loss is not None else ""))


@app.command()
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="NAME (its active version) or NAME@VERSION.")],
) -> None:
    """One adapter version: status, folder and its whole manifest (JSON)."""
    with _registry(ctx) as registry:
        record = registry.get(AdapterRef.parse(ref))
    echo_json(record.to_dict())


@app.command()
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The adapter.")],
    version: Annotated[
        int | None, typer.Argument(help="The version (default: the newest candidate).")
    ] = None,
) -> None:
    """Make a version the one `NAME` means; the active one is retired."""
    with _registry(ctx) as registry:
        record = registry.promote(name, version)
    typer.echo(f"{record.name}@{record.version} is now active.")


@app.command()
def rollback(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The adapter.")]) -> None:
    """Make the previously active version active again."""
    with _registry(ctx) as registry:
        record = registry.rollback(name)
    typer.echo(f"{record.name}@{record.version} is active again.")


RefArgument = Annotated[str, typer.Argument(help="NAME (its active version) or NAME@VERSION.")]
OutOption = Annotated[Path, typer.Option("--out", help="A new folder to write.")]


@app.command()
def export(ctx: typer.Context, ref: RefArgument, out: OutOption) -> None:
    """Copy an adapter out (standard PEFT files + manifest) for another server, such as
    vLLM (`--lora-modules name=OUT`)."""
    from training import export_adapter

    with _registry(ctx) as registry:
        record = registry.get(AdapterRef.parse(ref))
    export_adapter(record, out)
    typer.echo(f"Exported {record.name}@{record.version} to {out}")


@app.command()
def merge(ctx: typer.Context, ref: RefArgument, out: OutOption) -> None:
    """Write the base model with the adapter merged in, as one ordinary model folder
    (for servers without LoRA support)."""
    bot = current_bot(ctx)
    with _registry(ctx) as registry:
        record = registry.get(AdapterRef.parse(ref))
    with stderr.status("Loading the base model and merging…"):
        quiet_model_libraries()
        from hybrid.hardware import Placement
        from training import load_base_model, merge_adapter

        base = load_base_model(
            bot.config.models.base,
            base_dir=bot.root,
            models_dir=bot.models_dir,
            placement=Placement("cpu", "float32"),  # merged weights are saved in full precision
        )
        merge_adapter(base, record, out)
    typer.echo(f"Merged {record.name}@{record.version} into {out}")
