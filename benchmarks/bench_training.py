"""Training on the sample bot's conversations with the real default model:

- throughput in non-padding tokens/s of hybrid's loop against a naive baseline: the
  Hugging Face Trainer + peft, fp32, the default padding collator, same tokenized data and
  the same LoRA hyperparameters;
- the share of this machine's bf16 matmul peak (measured in the same run) that the loop
  reaches;
- the throughput with gradient checkpointing;
- peak memory of a LoRA, a QLoRA and a checkpointed LoRA run (each in its own process);
- the wall time of one epoch.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, median_seconds, with_settings
from hybrid.bot import Bot, init_bot

STEPS = 6
ROUNDS = 2
# Peak resident memory from /proc's VmHWM (of this process's own address space): on Linux
# getrusage's ru_maxrss survives fork+exec, so a child would report its parent's size.
MEMORY_PROBE = """
import sys
from pathlib import Path
from benchmarks.common import with_settings
from hybrid.bot import Bot
from training import TrainRequest, train_adapter
bot = Bot.open(Path(sys.argv[1]))
bot = with_settings(bot, "training", gradient_checkpointing=sys.argv[2] == "checkpointing")
train_adapter(bot, TrainRequest(bot.data_dir / "train.jsonl", name="memory",
                                qlora=sys.argv[2] == "qlora", max_steps=2))
status = Path("/proc/self/status").read_text().splitlines()
print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        # Interleaved rounds, the best of each kept: this shared 2-core machine's noise
        # only ever slows a run down, and it varies by +-10% from minute to minute.
        rounds = [(_ours(bot, max_steps=STEPS), _baseline(bot)) for _ in range(ROUNDS)]
        ours = max((mine for mine, _ in rounds), key=lambda result: result["rate"])
        baseline = max(theirs for _, theirs in rounds)
        checkpointed = with_settings(bot, "training", gradient_checkpointing=True)
        checkpointing = _ours(checkpointed, max_steps=STEPS)
        peak = _bf16_peak()
        memory = {m: _peak_memory_mb(bot, m) for m in ("lora", "qlora", "checkpointing")}
        started = time.perf_counter()
        epoch = _ours(with_settings(bot, "training", epochs=1), max_steps=None)
        epoch_wall = time.perf_counter() - started
    achieved = ours["flops"] / ours["seconds"] / 1e9
    note = (
        f"{STEPS} steps of 8 sample conversations, best of {ROUNDS} interleaved rounds; "
        "SmolLM2-135M, LoRA r16 all-linear"
    )
    return [
        Figure("hybrid training throughput", round(ours["rate"]), "tokens/s", note),
        Figure(
            "naive baseline throughput",
            round(baseline),
            "tokens/s",
            f"HF Trainer + peft, fp32, DataCollatorForSeq2Seq padding; same data, best of {ROUNDS}",
        ),
        Figure("hybrid / baseline", round(ours["rate"] / baseline, 2), "x", "target >= 3"),
        Figure(
            "hybrid throughput, gradient checkpointing",
            round(checkpointing["rate"]),
            "tokens/s",
            "training.gradient_checkpointing = true (which also turns prefix sharing off)",
        ),
        Figure(
            "share of bf16 matmul peak",
            round(100 * achieved / peak, 1),
            "%",
            f"{achieved:.0f} of {peak:.0f} GFLOP/s (2048² bf16 matmul, same run)",
        ),
        Figure(
            "peak memory, LoRA", round(memory["lora"]), "MB", "peak RSS (VmHWM) of a 2-step run"
        ),
        Figure(
            "peak memory, QLoRA (NF4)",
            round(memory["qlora"]),
            "MB",
            "peak RSS (VmHWM) of a 2-step run",
        ),
        Figure(
            "peak memory, LoRA + gradient checkpointing",
            round(memory["checkpointing"]),
            "MB",
            "peak RSS (VmHWM) of a 2-step run",
        ),
        Figure(
            "one epoch of the sample data",
            round(epoch["seconds"]),
            "s",
            f"training loop, {epoch['steps']} steps; {epoch_wall:.0f} s with loading, "
            "checks and publishing",
        ),
    ]


def _ours(bot: Bot, *, max_steps: int | None) -> dict[str, float]:
    from training import TrainRequest, train_adapter

    result = train_adapter(
        bot, TrainRequest(bot.data_dir / "train.jsonl", name="bench", max_steps=max_steps)
    )
    history = result.history
    return {
        "rate": history.tokens / history.seconds,
        "seconds": history.seconds,
        "steps": result.steps,
        "flops": _model_flops(bot, history.positions, history.trained_tokens),
    }


def _model_flops(bot: Bot, positions: int, trained_tokens: int) -> float:
    """Matmul FLOPs of LoRA training as run: every linear layer's forward (2 per weight
    per computed position; a shared prefix counts once) and input gradient (2 more;
    frozen weights need no weight gradient), and the output layer for the trained tokens
    only. Attention scores, under 10% at these
    lengths, are left out, so the share is a lower bound."""
    config = json.loads(next(bot.models_dir.glob("*/config.json")).read_text())
    hidden, layers = config["hidden_size"], config["num_hidden_layers"]
    heads, kv_heads = config["num_attention_heads"], config["num_key_value_heads"]
    per_layer = (
        hidden * hidden * 2  # q, o
        + 2 * hidden * (hidden * kv_heads // heads)  # k, v
        + 3 * hidden * config["intermediate_size"]  # gate, up, down
    )
    return 4 * per_layer * layers * positions + 4 * hidden * config["vocab_size"] * trained_tokens


def _baseline(bot: Bot) -> float:
    """Non-padding tokens/s of the Hugging Face Trainer on the same examples."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from hybrid.hardware import Placement
    from training import load_base_model, read_dataset, tokenize_example

    base = load_base_model(
        bot.config.models.base,
        base_dir=bot.root,
        models_dir=bot.models_dir,
        placement=Placement("cpu", "float32"),
    )
    examples = [
        {"input_ids": t.input_ids, "labels": t.labels, "attention_mask": [1] * len(t.input_ids)}
        for t in (
            tokenize_example(base.tokenizer, e)
            for e in read_dataset(bot.data_dir / "train.jsonl").examples
        )
    ]
    collator = DataCollatorForSeq2Seq(base.tokenizer, padding=True)
    counted = []

    def counting(features):
        batch = collator(features)
        counted.append(int(batch["attention_mask"].sum()))
        return batch

    settings = bot.config.training
    model = get_peft_model(
        base.model,
        LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
    )
    with tempfile.TemporaryDirectory() as output:
        arguments = TrainingArguments(
            output_dir=output,
            per_device_train_batch_size=settings.batch_size,
            max_steps=STEPS,
            learning_rate=settings.learning_rate,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            logging_strategy="no",
            seed=settings.seed,
            dataloader_num_workers=0,
            remove_unused_columns=False,
        )
        trainer = Trainer(
            model=model, args=arguments, train_dataset=examples, data_collator=counting
        )
        torch.manual_seed(settings.seed)
        metrics = trainer.train().metrics
    return sum(counted[:STEPS]) / metrics["train_runtime"]


def _bf16_peak() -> float:
    import torch

    size = 2048
    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    return 2 * size**3 / median_seconds(lambda: a @ b, repeats=10, warmup=2) / 1e9


def _peak_memory_mb(bot: Bot, mode: str) -> float:
    probe = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(bot.root), mode],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(probe.stdout.strip().splitlines()[-1]) / 1024  # VmHWM is in kB
