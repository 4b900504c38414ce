"""Training in two processes (`hybrid train --processes 2`: Accelerate, DDP over gloo)
against one, on the sample bot with the real default model and the same global batch.

On a 2-core machine two processes split the same two cores (one thread each, as torchrun
sets them), so the ratio shows what the processes cost (gradient exchange, duplicated
work, smaller matmuls per thread), not a speed-up: that needs a core or a GPU per
process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import Figure
from hybrid.bot import Bot, init_bot

STEPS = 6
ROUNDS = 2


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        # Interleaved rounds, the best of each kept: noise only ever slows a run down.
        rounds = [(_rate(bot, 1), _rate(bot, 2)) for _ in range(ROUNDS)]
    one = max(single for single, _ in rounds)
    two = max(double for _, double in rounds)
    note = (
        f"{STEPS} steps of 8 sample conversations (the same global batch), best of {ROUNDS} "
        "interleaved rounds; SmolLM2-135M, LoRA r16"
    )
    return [
        Figure("training, 1 process", round(one), "tokens/s", note),
        Figure("training, 2 processes (DDP, gloo)", round(two), "tokens/s", note),
        Figure(
            "2 processes / 1 process",
            round(two / one, 2),
            "x",
            "the same 2 cores shared by both processes: the overhead, not a speed-up",
        ),
    ]


def _rate(bot: Bot, processes: int) -> float:
    """Tokens/s of the training loop, as `hybrid train` records it in the manifest."""
    done = subprocess.run(
        [sys.executable, "-m", "hybrid", "-C", str(bot.root), "train", "data/train.jsonl",
         "--name", f"processes{processes}", "--max-steps", str(STEPS),
         "--processes", str(processes), "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)["manifest"]["timings"]["tokens_per_second"]
