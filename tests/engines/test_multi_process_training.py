"""`hybrid train --processes 2`: the recipe under Accelerate (DDP over gloo, two CPU
processes) trains what one process trains with the same global batch, publishes one
adapter, and a run killed with -9 resumes to the same end. LoRA dropout is off, so that
the two runs compute the same function and only the order of float sums differs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import adapter_weights, tiny_bot

from hybrid import Bot
from training import AdapterRegistry, TrainRequest, train_adapter

pytestmark = pytest.mark.engines

KILL_TRAIN = Path(__file__).parents[1] / "training" / "kill_train.py"
TWO_PROCESSES = [
    sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
    "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
    "--main_process_port", "0",
]  # fmt: skip


def hybrid_train(bot: Bot, *options: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "hybrid", "-C", str(bot.root), "train", "data/small.jsonl",
         "--processes", "2", "--json", *options],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def one_and_two(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """The same run in one process (in this one) and in two (`hybrid train --processes 2`)."""
    folder = tmp_path_factory.mktemp("processes")
    one = tiny_bot(folder / "one", tiny_model_dir, lora_dropout=0.0)
    single = train_adapter(one, TrainRequest(one.data_dir / "small.jsonl")).adapter
    two = tiny_bot(folder / "two", tiny_model_dir, lora_dropout=0.0)
    return single, hybrid_train(two)


def test_two_processes_train_like_one_with_the_same_global_batch(one_and_two) -> None:
    single, double = one_and_two
    assert (double["name"], double["version"], double["status"]) == ("style", 1, "candidate")
    one, two = single.manifest, double["manifest"]
    assert (one["timings"]["processes"], two["timings"]["processes"]) == (1, 2)
    # The same data, in the same order: every step trains the same tokens.
    assert two["timings"]["tokens"] == one["timings"]["tokens"]
    assert two["timings"]["trained_tokens"] == one["timings"]["trained_tokens"]
    steps_one, losses_one = zip(*one["metrics"]["train_loss"], strict=True)
    steps_two, losses_two = zip(*two["metrics"]["train_loss"], strict=True)
    assert steps_two == steps_one == tuple(range(1, 11))
    # Before any update the two runs compute the same loss, to float precision. After it,
    # they differ by the order of float sums, which Adam amplifies in gradients near zero.
    assert losses_two[0] == pytest.approx(losses_one[0], rel=1e-6)
    assert losses_two == pytest.approx(losses_one, rel=1e-3)
    assert losses_one[-1] < losses_one[0], "the runs compared do learn"
    evals_one = [loss for _, loss in one["metrics"]["eval_loss"]]
    evals_two = [loss for _, loss in two["metrics"]["eval_loss"]]
    assert len(evals_two) == 2 and evals_two == pytest.approx(evals_one, rel=1e-4)
    mine, theirs = adapter_weights(Path(double["path"])), adapter_weights(single.path)
    assert mine.keys() == theirs.keys()
    difference = sum(float((mine[k] - theirs[k]).square().sum()) for k in theirs) ** 0.5
    size = sum(float(theirs[k].square().sum()) for k in theirs) ** 0.5
    assert difference / size < 0.01, "one adapter, up to the noise of float sums"


def test_a_two_process_run_killed_with_9_resumes_to_the_same_adapter(
    one_and_two, tmp_path: Path, tiny_model_dir: Path
) -> None:
    import torch

    _, uninterrupted = one_and_two
    bot = tiny_bot(tmp_path / "bot", tiny_model_dir, lora_dropout=0.0)
    # `accelerate launch` straight, no hybrid CLI: the main process kills itself as the
    # second checkpoint (step 4) starts to be written; torchrun then stops the other one.
    killed = subprocess.run(
        [*TWO_PROCESSES, str(KILL_TRAIN), str(bot.root), str(bot.data_dir / "small.jsonl"),
         "style", "training.checkpoints:RunFolder.save", "2"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode != 0, killed.stderr
    assert "training finished" not in killed.stderr
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        assert registry.list() == [], "a killed run publishes nothing"
    runs = bot.state_dir / "runs" / "style"
    assert [p.name for p in runs.glob("step-*")] == ["step-000002"]

    resumed = hybrid_train(bot, "--resume")
    assert resumed["version"] == 1
    steps = [step for step, _ in resumed["manifest"]["metrics"]["train_loss"]]
    assert steps == list(range(1, 11))
    losses = [loss for _, loss in resumed["manifest"]["metrics"]["train_loss"]]
    expected = [loss for _, loss in uninterrupted["manifest"]["metrics"]["train_loss"]]
    assert losses == pytest.approx(expected, rel=1e-6)
    mine = adapter_weights(Path(resumed["path"]))
    theirs = adapter_weights(Path(uninterrupted["path"]))
    assert all(torch.allclose(mine[k], theirs[k], rtol=1e-5, atol=1e-7) for k in theirs)
    assert not runs.exists(), "the published run leaves no state"
