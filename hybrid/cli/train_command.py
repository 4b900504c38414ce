"""`hybrid train`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperArgument, TyperOption

from hybrid.bot import Bot
from hybrid.cli.context import current_bot
from hybrid.cli.output import JsonFlag, echo_json, quiet_model_libraries, stderr
from hybrid.cli.progress import ProgressReport
from hybrid.config import with_training
from hybrid.types import AdapterRef


def train(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Training conversations, JSONL.")],
    name: Annotated[str, typer.Option(help="The adapter's name in the registry.")] = "style",
    eval_file: Annotated[
        Path | None,
        typer.Option("--eval", help="Evaluation data (else training.eval_fraction is held out)."),
    ] = None,
    qlora: Annotated[
        bool, typer.Option("--qlora", help="Train on the base model quantized to 4-bit NF4.")
    ] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue NAME's interrupted run from its checkpoint.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Train despite lint errors, leaving those lines out.")
    ] = False,
    retrieval: Annotated[
        bool | None,
        typer.Option(
            "--retrieval/--no-retrieval",
            help="Give each question the sources the index finds for it, as when served "
            "(default: when the bot has a published index).",
            show_default=False,
        ),
    ] = None,
    start_from: Annotated[
        str | None,
        typer.Option(
            help="Start from this version's weights (NAME@V, or NAME: its active version) "
            "instead of the base model's; its LoRA settings must be today's.",
            show_default=False,
        ),
    ] = None,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many optimizer steps.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the data (training.epochs; 0: sized by count).")
    ] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Peak learning rate (training.learning_rate).")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Examples per optimizer step (training.batch_size).")
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (training.lora_r).")] = None,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="Train in this many processes under Accelerate (DDP; gloo on CPUs, NCCL on "
            "GPUs), each on its share of every batch.",
        ),
    ] = 1,
    accelerate_config: Annotated[
        Path | None,
        typer.Option(help="An `accelerate config` file for the launch (with --processes)."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a LoRA style adapter on FILE and add it to the registry as a candidate
    (promote it with `hybrid adapters promote NAME`). Options named after a [training]
    setting override hybrid.toml for this run; the manifest records what was used.
    Run under `accelerate launch -m hybrid train ...`, it trains in the launched processes."""
    from training.processes import is_main_process, launched_processes

    if processes > 1 and launched_processes() == 1:
        arguments = _command_line(ctx, leave_out={"processes", "accelerate_config"})
        command = _accelerate_launch(processes, accelerate_config, ["train", *arguments])
        raise typer.Exit(subprocess.run(command).returncode)
    main_process = is_main_process()
    stderr.quiet = not main_process  # the main process alone reports
    bot = current_bot(ctx)
    config = with_training(
        bot.config, epochs=epochs, learning_rate=learning_rate, batch_size=batch_size, lora_r=lora_r
    )
    bot = Bot(bot.root, config)
    with stderr.status("Loading the base model and checking the data…"):
        quiet_model_libraries()
        from indexes import IndexNotReadyError, open_retriever
        from training import TrainRequest, train_adapter

        retriever = None
        if retrieval is not False:
            try:
                retriever = open_retriever(bot)
            except IndexNotReadyError:
                if retrieval:  # asked for: say that the index is missing
                    raise

    request = TrainRequest(
        train_file=file,
        name=name,
        eval_file=eval_file,
        qlora=qlora,
        resume=resume,
        force=force,
        max_steps=max_steps,
        start_from=AdapterRef.parse(start_from) if start_from else None,
        retriever=retriever,
        index_version=retriever.version() if retriever is not None else None,
    )
    fields = ("loss {loss}", "{rate} tokens/s")
    with ProgressReport("Training", fields=fields) as report:

        def progress(update) -> None:
            report.update(
                update.step,
                update.total_steps,
                description=f"Training, epoch {update.epoch}",
                loss=f"{update.loss:.3f}",
                rate=f"{update.tokens_per_second:.0f}",
            )

        result = train_adapter(bot, request, progress)
    if not main_process:
        return
    record = result.adapter
    metrics = record.manifest["metrics"]
    if as_json:
        echo_json(record.to_dict())
        return
    early = ", stopped early" if result.stopped_early else ""
    started = record.manifest.get("started_from")
    origin = f", starting from {started}" if started else ""
    typer.echo(
        f"Trained {record.name}@{record.version} (candidate) in {result.steps} steps, "
        f"{result.epochs} epoch(s){early}{origin}."
    )
    losses = f"  train loss {metrics['final_train_loss']:.3f}"
    if metrics["best_eval_loss"] is not None:
        losses += f", best eval loss {metrics['best_eval_loss']:.3f}"
    typer.echo(losses)
    typer.echo(f"  {result.tokens_per_second:.0f} tokens/s · {record.path}")
    typer.echo(f"  promote it with: hybrid adapters promote {record.name} {record.version}")


def _accelerate_launch(processes: int, config: Path | None, arguments: list[str]) -> list[str]:
    """`accelerate launch` running `hybrid ARGUMENTS` in `processes` processes."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(processes)]
    launch += ["--main_process_port", "0"]  # a free port: several runs may share a machine
    if config is not None:
        launch += ["--config_file", str(config)]
    else:
        # torchrun's launcher, on CPUs too (Accelerate's --cpu launcher needs MPI for more
        # than one process); hybrid asks Accelerate for gloo when training on a CPU.
        launch += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no"]
        launch += ["--dynamo_backend", "no"]
    return [*launch, "-m", "hybrid", *arguments]


def _command_line(ctx: typer.Context, leave_out: set[str]) -> list[str]:
    """Arguments that parse back to this command's parameters (relative paths stay
    relative: the launched processes start in this process's folder)."""
    arguments: list[str] = []
    for parameter in ctx.command.params:
        value = ctx.params.get(parameter.name or "")
        if parameter.name in leave_out or value is None:
            continue
        if isinstance(parameter, TyperArgument):
            arguments.append(str(value))
        elif isinstance(parameter, TyperOption) and parameter.is_flag:
            if parameter.secondary_opts:
                arguments.append(parameter.opts[0] if value else parameter.secondary_opts[0])
            elif value:
                arguments.append(parameter.opts[0])
        else:
            arguments += [parameter.opts[0], str(value)]
    return arguments
