"""The training recipe: a LoRA (or QLoRA) style adapter from example conversations.

Reads top to bottom: check and tokenize the data -> load the base model and wrap it with
LoRA -> one loop over length-grouped batches (bf16 autocast where native, loss on the
answers only, normalised per trained token across micro-batches), an eval loss after
every epoch, early stopping, checkpoints -> publish the best adapter to the registry.

Under `accelerate launch` the same loop runs in every process: each takes its share of
every batch, gradients are averaged by DDP, losses summed over processes, and only the
main process writes checkpoints and publishes (training/processes.py).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hybrid.bot import Bot
from hybrid.config import TrainingSettings
from hybrid.errors import InvalidInputError
from hybrid.hardware import Placement, bf16_autocast_pays, choose_placement
from hybrid.models import MODEL_LOADING
from hybrid.protocols import Retriever
from hybrid.types import AdapterRef
from training.base_model import BaseModel, load_base_model
from training.batching import epoch_batches, epochs_for, process_micro_batches
from training.checkpoints import RunFolder
from training.continuation import load_start, starting_version
from training.datasets import Example, with_system_prompt
from training.forward import loss_module
from training.lint import lint_for_training
from training.loss_curve import plot_loss_curve
from training.processes import Processes, current_processes
from training.registry import AdapterRecord, AdapterRegistry
from training.rendering import TokenizedExample, tokenize_example
from training.retrieval_data import with_retrieval
from training.run_record import adapter_manifest, run_identity


@dataclass(frozen=True)
class TrainRequest:
    train_file: Path
    name: str = "style"
    eval_file: Path | None = None
    qlora: bool = False
    resume: bool = False
    force: bool = False  # train despite lint errors, leaving the bad lines out
    max_steps: int | None = None  # stop early (smoke tests, quick trials)
    # Retrieval-aware training: each question gets the sources this retriever finds
    # (in index version `index_version`, recorded in the manifest).
    retriever: Retriever | None = None
    index_version: int | None = None
    # Lineage, recorded in the manifest: the dataset snapshot the train file is, and the
    # version this one is meant to replace (both set by `hybrid retrain`).
    dataset: str | None = None
    parent: str | None = None
    # Start from this version's LoRA weights instead of zero (training/continuation.py);
    # NAME alone: its active version, resolved to NAME@V when the run starts.
    start_from: AdapterRef | None = None


@dataclass(frozen=True)
class Progress:
    """Sent after every step, and once more when an epoch ends (`epoch_done`, with the
    epoch's eval loss when there is an eval set). A callback that raises stops the run;
    its last checkpoint stays resumable."""

    step: int
    total_steps: int
    epoch: int
    loss: float
    tokens_per_second: float
    epoch_done: bool = False
    eval_loss: float | None = None


@dataclass
class History:
    """What the run measured; saved in checkpoints and in the adapter's manifest."""

    train_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    eval_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    tokens: int = 0  # non-padding tokens trained on (what tokens/s counts)
    positions: int = 0  # positions the model computed (a shared prefix counts once)
    trained_tokens: int = 0  # tokens the loss was computed on
    seconds: float = 0.0  # time in the training loop, summed over resumes

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class TrainResult:
    adapter: AdapterRecord
    steps: int
    epochs: int
    history: History
    stopped_early: bool

    @property
    def tokens_per_second(self) -> float:
        return self.history.tokens_per_second


def train_adapter(
    bot: Bot, request: TrainRequest, progress: Callable[[Progress], None] | None = None
) -> TrainResult:
    import torch

    settings = bot.config.training
    placement = choose_placement(bot.config.models.device, bot.config.models.dtype)
    autocast = _autocast(settings, placement)
    # Gradient checkpointing recomputes layers, which would append to the prefix's KV cache.
    share_prefix = not settings.gradient_checkpointing
    processes = current_processes(cpu=placement.device == "cpu")  # before any GPU memory
    if not processes.is_main:
        progress = None
    start = starting_version(bot, request.start_from) if request.start_from else None
    if start is not None:  # the run's identity and manifest name the version itself
        request = replace(request, start_from=start.ref)

    # -- data ---------------------------------------------------------------------------
    base = load_base_model(
        bot.config.models.base,
        base_dir=bot.root,
        models_dir=bot.models_dir,
        placement=placement,
        quantize_4bit=request.qlora,
        # On a CPU, eager attention trains ~15% faster than SDPA's flash kernel at support
        # conversation lengths (~150 tokens; measured fwd+bwd on SmolLM2-135M, 2 cores).
        attention="eager" if placement.device == "cpu" else None,
    )
    train_set, eval_set = _datasets(bot, base, request)
    epochs = settings.epochs or epochs_for(len(train_set))
    lengths = [len(example.input_ids) for example in train_set]
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    total_steps = epochs * steps_per_epoch
    if request.max_steps is not None:
        total_steps = min(total_steps, request.max_steps)

    # -- model ----------------------------------------------------------------------------
    torch.manual_seed(settings.seed)  # LoRA initialisation, then dropout masks
    if autocast is not nullcontext and not request.qlora:
        _store_frozen_linears_in_bf16(base.model)
    model = _with_lora(base, settings, request.qlora)
    if start is not None and not request.resume:  # a resumed run loads its checkpoint
        load_start(model, start)
    if processes.rank:  # its own dropout masks; the main process keeps a 1-process run's
        torch.manual_seed(settings.seed + processes.rank)
    forward = processes.wrap(
        loss_module(model, base.tokenizer.pad_token_id, autocast, share_prefix=share_prefix)
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    warmup = max(1, round(0.03 * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / total_steps))
    )

    # -- run state (fresh or resumed) ----------------------------------------------------
    run = _run_folder(bot, request.name)
    identity = run_identity(bot, request, settings)
    history, step, epoch, batch_index = History(), 0, 0, 0
    best: tuple[float, dict[str, Any]] | None = None
    stale_epochs = 0
    if request.resume:
        state = run.resume(identity)
        _load_trainable(model, state["weights"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        # A run resumed on another number of processes sees the same batches in the
        # same order; only its dropout masks differ from the interrupted run's.
        rngs = state["torch_rng"]
        torch.set_rng_state(rngs[processes.rank % len(rngs)])
        # A GPU draws its dropout masks from its own generator (older runs kept none).
        gpu_rngs = state.get("cuda_rng") or [None]
        gpu_rng = gpu_rngs[processes.rank % len(gpu_rngs)]
        if gpu_rng is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(gpu_rng)
        history = state["history"]
        step, epoch, batch_index = state["step"], state["epoch"], state["batch_index"]
        best, stale_epochs = state["best"], state["stale_epochs"]
    else:
        processes.on_main(lambda: run.start(identity))

    def checkpoint() -> None:
        state = {
            "weights": _trainable_state(model),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": processes.gather(torch.get_rng_state()),  # one per process
            "cuda_rng": processes.gather(
                torch.cuda.get_rng_state() if torch.cuda.is_available() else None
            ),
            "history": history,
            "step": step,
            "epoch": epoch,
            "batch_index": batch_index,
            "best": best,
            "stale_epochs": stale_epochs,
        }
        processes.on_main(lambda: run.save(step, state))

    # -- the loop -----------------------------------------------------------------------
    patience = settings.early_stopping_patience

    def stopped_early() -> bool:
        return patience > 0 and stale_epochs >= patience

    while epoch < epochs and step < total_steps and not stopped_early():
        batches = epoch_batches(lengths, settings.batch_size, seed=settings.seed, epoch=epoch)
        while batch_index < len(batches) and step < total_steps:
            started = time.perf_counter()
            batch = [train_set[i] for i in batches[batch_index]]
            loss, positions = _train_step(forward, processes, batch, settings)
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step, batch_index = step + 1, batch_index + 1
            history.seconds += time.perf_counter() - started
            history.tokens += sum(len(example.input_ids) for example in batch)
            history.positions += positions
            history.trained_tokens += sum(example.trained_tokens for example in batch)
            history.train_loss.append((step, loss))
            if progress:
                progress(Progress(step, total_steps, epoch + 1, loss, history.tokens_per_second))
            if step % settings.checkpoint_steps == 0:
                checkpoint()
        if batch_index == len(batches):  # a whole epoch: evaluate, maybe stop early
            epoch, batch_index = epoch + 1, 0
            eval_loss = None
            if eval_set:
                eval_loss = _eval_loss(forward, processes, eval_set, settings)
                history.eval_loss.append((step, eval_loss))
                if best is None or eval_loss < best[0]:
                    best, stale_epochs = (eval_loss, _trainable_state(model)), 0
                else:
                    stale_epochs += 1
            checkpoint()
            if progress:
                last_loss = history.train_loss[-1][1] if history.train_loss else float("nan")
                rate = history.tokens_per_second
                progress(Progress(step, total_steps, epoch, last_loss, rate, True, eval_loss))

    # -- publish ----------------------------------------------------------------------------
    if best is not None:
        _load_trainable(model, best[1])  # the epoch with the lowest eval loss
    manifest = adapter_manifest(
        bot, base, request, identity, history, step, epochs, stopped_early(), processes.count
    )

    def write(folder: Path) -> dict[str, Any]:
        model.save_pretrained(folder)
        plot_loss_curve(history.train_loss, history.eval_loss, folder / "loss_curve.png")
        return manifest

    def publish() -> AdapterRecord:
        with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
            record = registry.publish(request.name, write)
        run.finish()
        return record

    record = processes.on_main(publish)
    return TrainResult(record, step, epoch, history, stopped_early())


def can_resume(bot: Bot, name: str) -> bool:
    """Whether an interrupted run of adapter `name` left a checkpoint to resume from."""
    return _run_folder(bot, name).has_checkpoint()


def discard_run(bot: Bot, name: str) -> None:
    """Delete adapter `name`'s unfinished run and its checkpoints: a run nobody will
    resume (a cancelled or failed fine-tuning job)."""
    _run_folder(bot, name).finish()


def _run_folder(bot: Bot, name: str) -> RunFolder:
    return RunFolder(bot.state_dir / "runs" / name)


def _autocast(settings: TrainingSettings, placement: Placement):
    import torch

    wanted = settings.bf16 == "on" or (settings.bf16 == "auto" and bf16_autocast_pays(placement))
    if not wanted:
        return nullcontext
    return lambda: torch.autocast(placement.device, dtype=torch.bfloat16)


def _datasets(
    bot: Bot, base: BaseModel, request: TrainRequest
) -> tuple[list[TokenizedExample], list[TokenizedExample]]:
    """Lint, then tokenize (with retrieved sources when asked). Lint errors stop the run
    unless forced (then the bad lines are left out). Without an eval file, a seeded
    share of the examples is held out."""
    settings = bot.config.training
    tokenizer = base.tokenizer
    system_prompt = bot.config.bot.system_prompt
    report = lint_for_training(
        request.train_file,
        eval_file=request.eval_file,
        tokenizer=tokenizer,
        settings=settings,
        system_prompt=system_prompt,
    )
    whole_file = [problem for problem in report.errors if problem.line is None]
    if whole_file:  # a missing or empty file: nothing that --force could leave out
        raise InvalidInputError(str(whole_file[0]))
    if not report.ok and not request.force:
        first = "\n  ".join(str(problem) for problem in report.errors[:5])
        raise InvalidInputError(
            f"{request.train_file} has {len(report.errors)} error(s):\n  {first}",
            hint=f"see `hybrid data lint {request.train_file}`, or train anyway with --force "
            "(the lines with errors are left out)",
        )

    def prepared(example: Example) -> Example:
        example = with_system_prompt(example, system_prompt)
        if request.retriever is None:
            return example
        return with_retrieval(
            example,
            request.retriever,
            system_prompt=system_prompt,
            top_k=bot.config.retrieval.top_k,
        )

    def usable(dataset) -> list[TokenizedExample]:
        skip = report.bad_lines(dataset.path)
        return [
            tokenize_example(tokenizer, prepared(example), settings.max_seq_length)
            for example in dataset.examples
            if example.line not in skip
        ]

    train_set = usable(report.train)
    if not train_set:
        raise InvalidInputError(f"{request.train_file} has no usable example")
    if report.eval is not None:
        return train_set, usable(report.eval)
    held_out = round(len(train_set) * settings.eval_fraction)
    if held_out == 0:
        return train_set, []
    order = list(range(len(train_set)))
    random.Random(settings.seed).shuffle(order)
    chosen = set(order[:held_out])
    return (
        [example for i, example in enumerate(train_set) if i not in chosen],
        [example for i, example in enumerate(train_set) if i in chosen],
    )


def _with_lora(base: BaseModel, settings: TrainingSettings, qlora: bool):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    model = base.model
    if qlora:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=settings.gradient_checkpointing
        )
    elif settings.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    layers = int(model.config.num_hidden_layers)
    if settings.freeze_layers >= layers:
        raise InvalidInputError(
            f"training.freeze_layers = {settings.freeze_layers}, but the base model has "
            f"{layers} layers",
            hint=f"use a value below {layers}",
        )
    config = LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=_target_modules(model, settings.target_modules),
        layers_to_transform=list(range(settings.freeze_layers, layers))
        if settings.freeze_layers
        else None,
        task_type="CAUSAL_LM",
    )
    from training.dropout import use_pool_dropout

    with MODEL_LOADING:  # LoRA's initialisation uses torch's init functions
        model = get_peft_model(model, config)
    use_pool_dropout(model, max_tokens=max(settings.max_batch_tokens, settings.max_seq_length))
    return model


def _store_frozen_linears_in_bf16(model) -> None:
    """Under bf16 autocast each linear layer casts its fp32 weight to bf16 on every call
    (autocast caches the casts of trainable weights only). Storing the frozen weights in
    bf16 gives the same results without those casts, in half the memory. The output
    layer keeps its dtype: it is usually tied to the input embeddings."""
    import torch

    output = model.get_output_embeddings()
    for module in model.modules():
        if isinstance(module, torch.nn.Linear) and module is not output:
            module.to(torch.bfloat16)


def _target_modules(model, setting: str | list[str]) -> list[str]:
    """ "all-linear" resolved to the short names of the model's linear layers (the output
    layer excepted), so adapter_config.json lists plain names like q_proj that vLLM and
    every other LoRA loader understand."""
    if setting != "all-linear":
        return [setting] if isinstance(setting, str) else list(setting)
    import torch

    output = model.get_output_embeddings()
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and module is not output
        }
    )


def _train_step(
    forward, processes: Processes, batch: list[TokenizedExample], settings: TrainingSettings
) -> tuple[float, int]:
    """Forward and backward over this process's micro-batches of one optimizer step. The
    loss is the mean over the whole step's trained tokens, whichever micro-batch and
    process they fell in; DDP averages the processes' gradients, hence the factor of the
    process count. Returns the step's loss and the positions all processes computed."""
    forward.train()
    trained = sum(example.trained_tokens for example in batch)
    scale = processes.count / trained
    micros = process_micro_batches(
        batch, settings.max_batch_tokens, processes.rank, processes.count
    )
    total, positions = 0.0, 0
    for index, micro in enumerate(micros):
        synced = index == len(micros) - 1  # gradients are exchanged once per step
        with nullcontext() if synced else processes.no_sync(forward):
            # A process with fewer micro-batches still makes the call, contributing zero.
            result = forward(micro or batch[:1])
            (result.loss * (scale if micro else 0.0)).backward()
        if micro:
            total += float(result.loss.detach())
            positions += result.positions
    total, positions = processes.sum([total, positions])
    return total / trained, int(positions)


def _eval_loss(
    forward, processes: Processes, examples: list[TokenizedExample], settings: TrainingSettings
) -> float:
    import torch

    forward.eval()
    total, count = 0.0, 0
    micros = process_micro_batches(
        examples, settings.max_batch_tokens, processes.rank, processes.count
    )
    with torch.no_grad():
        for micro in micros:
            if micro:
                result = forward(micro)
                total, count = total + float(result.loss), count + result.trained_tokens
    total, count = processes.sum([total, count])
    return total / count


def _trainable_state(model) -> dict[str, Any]:
    return {
        name: parameter.detach().clone()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def _load_trainable(model, state: dict[str, Any]) -> None:
    parameters = dict(model.named_parameters())
    for name, value in state.items():
        parameters[name].data.copy_(value)
