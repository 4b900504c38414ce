"""`train_adapter` on a tiny random llama: a standard PEFT adapter that plain peft loads,
a loss that goes down, the same adapter from the same seed, lint errors that stop a run,
and kill -9 followed by --resume that ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support import adapter_weights, tiny_bot

from hybrid import Bot, HybridError
from hybrid.config import with_training
from hybrid.hardware import Placement
from hybrid.types import AdapterRef
from training import (
    AdapterRegistry,
    TrainRequest,
    export_adapter,
    load_base_model,
    merge_adapter,
    train_adapter,
)

KILL_TRAIN = Path(__file__).with_name("kill_train.py")


def test_training_publishes_a_standard_peft_adapter(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    bot = tiny_bot(tmp_path / "bot", tiny_model_dir)
    result = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl", name="kestrel"))
    record = result.adapter
    assert (record.name, record.version, record.status) == ("kestrel", 1, "candidate")
    assert record.path == bot.adapters_dir / "kestrel" / "1"
    assert (result.steps, result.epochs) == (10, 2)
    config = json.loads((record.path / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32
    assert set(config["target_modules"]) == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"
    }  # fmt: skip
    assert (record.path / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = record.manifest
    assert manifest["base_model"] == str(tiny_model_dir) and manifest["base_model_hash"]
    assert len(manifest["data_hash"]) == 64
    assert manifest["hyperparameters"]["learning_rate"] == 0.005
    assert len(manifest["metrics"]["eval_loss"]) == 2
    assert manifest["timings"]["tokens_per_second"] > 0

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_kernels=False)
    ids = torch.tensor([[5, 6, 7, 8]])
    before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, record.path)  # plain peft, nothing of ours
    assert not torch.allclose(tuned(ids).logits, before), "the adapter changes the model"
    assert not (bot.state_dir / "runs" / "kestrel").exists(), "a finished run leaves no state"


def test_the_eval_loss_goes_down(tmp_path: Path, tiny_model_dir: Path) -> None:
    bot = tiny_bot(tmp_path / "bot", tiny_model_dir, epochs=3, learning_rate=0.02)
    result = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl"))
    losses = [loss for _, loss in result.history.eval_loss]
    assert len(losses) == 3 and losses == sorted(losses, reverse=True), losses
    assert losses[-1] < losses[0] - 0.3, losses


def test_the_same_seed_gives_the_same_adapter(tmp_path: Path, tiny_model_dir: Path) -> None:
    weights = []
    for run in ("a", "b"):
        bot = tiny_bot(tmp_path / run, tiny_model_dir)
        result = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl", max_steps=3))
        weights.append(adapter_weights(result.adapter.path))
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][k] == weights[1][k]).all() for k in weights[0])


def test_lint_errors_stop_the_run_unless_forced(tmp_path: Path, tiny_model_dir: Path) -> None:
    bot = tiny_bot(tmp_path / "bot", tiny_model_dir)
    data = bot.data_dir / "small.jsonl"
    data.write_text(data.read_text() + "{not json\n" + '{"prompt": "q"}\n')
    with pytest.raises(HybridError, match=r"2 error\(s\)") as raised:
        train_adapter(bot, TrainRequest(data))
    assert "small.jsonl:41" in str(raised.value) and "--force" in str(raised.value)
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        assert registry.list() == []
    forced = train_adapter(bot, TrainRequest(data, force=True, max_steps=1))
    assert forced.adapter.version == 1
    with pytest.raises(HybridError, match="No such file") as missing:
        train_adapter(bot, TrainRequest(bot.data_dir / "missing.jsonl", force=True))
    assert "--force" not in str(missing.value), "forcing cannot train on a missing file"


def test_kill_9_then_resume_ends_exactly_like_an_uninterrupted_run(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    reference_bot = tiny_bot(tmp_path / "reference", tiny_model_dir)
    reference = train_adapter(reference_bot, TrainRequest(reference_bot.data_dir / "small.jsonl"))

    bot = tiny_bot(tmp_path / "bot", tiny_model_dir)
    data = bot.data_dir / "small.jsonl"
    # Killed as the third checkpoint (step 6 of 10, in epoch 2) starts to be written.
    killed = subprocess.run(
        [sys.executable, str(KILL_TRAIN), str(bot.root), str(data), "style",
         "training.checkpoints:RunFolder.save", "3"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        assert registry.list() == []
    assert [p.name for p in (bot.state_dir / "runs" / "style").glob("step-*")] == ["step-000004"]

    resumed = train_adapter(bot, TrainRequest(data, resume=True))
    assert (resumed.steps, resumed.epochs) == (reference.steps, reference.epochs) == (10, 2)
    assert [s for s, _ in resumed.history.train_loss] == list(range(1, 11))
    mine, theirs = adapter_weights(resumed.adapter.path), adapter_weights(reference.adapter.path)
    assert all(__import__("torch").equal(mine[k], theirs[k]) for k in theirs)


def test_resume_refuses_changed_data_or_nothing_to_resume(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = tiny_bot(tmp_path / "bot", tiny_model_dir)
    data = bot.data_dir / "small.jsonl"
    with pytest.raises(HybridError, match="nothing to resume"):
        train_adapter(bot, TrainRequest(data, resume=True))
    subprocess.run(
        [sys.executable, str(KILL_TRAIN), str(bot.root), str(data), "style",
         "training.checkpoints:RunFolder.save", "2"],
        capture_output=True, timeout=300, check=False,
    )  # fmt: skip
    data.write_text(data.read_text().replace("Hi there!", "Hello!", 1))
    with pytest.raises(HybridError, match="different data_hash"):
        train_adapter(bot, TrainRequest(data, resume=True))


def test_a_run_started_from_a_version_continues_where_that_version_ended(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import torch

    bot = tiny_bot(tmp_path / "bot", tiny_model_dir, epochs=3, learning_rate=0.02)
    data = bot.data_dir / "small.jsonl"
    first = train_adapter(bot, TrainRequest(data, name="kestrel")).adapter
    fresh = train_adapter(bot, TrainRequest(data, name="kestrel", max_steps=1))
    started = train_adapter(
        bot, TrainRequest(data, name="kestrel", max_steps=1, start_from=AdapterRef("kestrel", 1))
    )
    # The same first batch: from kestrel@1's weights its loss is where kestrel@1 ended.
    [(_, fresh_loss)] = fresh.history.train_loss
    [(_, started_loss)] = started.history.train_loss
    assert started_loss < fresh_loss - 0.3, (started_loss, fresh_loss)
    assert started.adapter.manifest["started_from"] == "kestrel@1"
    assert fresh.adapter.manifest["started_from"] is None
    before, after = adapter_weights(first.path), adapter_weights(started.adapter.path)
    assert all(torch.allclose(before[k], after[k], rtol=0, atol=0.1) for k in before), "one step on"

    other_rank = Bot(bot.root, with_training(bot.config, lora_r=8))
    with pytest.raises(HybridError, match=r"training\.lora_r is 8, it was trained with 16"):
        train_adapter(other_rank, TrainRequest(data, name="kestrel", start_from=first.ref))


def test_export_copies_the_adapter_and_merge_bakes_it_into_the_model(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    bot = tiny_bot(tmp_path / "bot", tiny_model_dir)
    record = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl", max_steps=3)).adapter
    exported = export_adapter(record, tmp_path / "out" / "kestrel")
    assert sorted(p.name for p in exported.iterdir()) == sorted(
        p.name for p in record.path.iterdir()
    )
    with pytest.raises(HybridError, match="already exists"):
        export_adapter(record, exported)

    base = load_base_model(
        str(tiny_model_dir), base_dir=bot.root, models_dir=bot.models_dir,
        placement=Placement("cpu", "float32"),
    )  # fmt: skip
    merged_dir = merge_adapter(base, record, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(merged_dir, use_kernels=False)
    plain = AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_kernels=False)
    reference = PeftModel.from_pretrained(plain, record.path)
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    assert torch.allclose(merged(ids).logits, reference(ids).logits, atol=1e-4)
    assert (merged_dir / "tokenizer.json").is_file()


def test_qlora_trains_on_a_4_bit_base(tmp_path: Path, tiny_model_dir: Path) -> None:
    bot = tiny_bot(tmp_path / "bot", tiny_model_dir)
    data = bot.data_dir / "small.jsonl"
    quantized = train_adapter(bot, TrainRequest(data, qlora=True, max_steps=2))
    assert quantized.adapter.manifest["qlora"] is True
    assert quantized.history.train_loss[-1][1] > 0
    full = train_adapter(bot, TrainRequest(data, max_steps=1))
    # The same LoRA tensors as a full-precision run: the adapter fits the unquantized base.
    assert (
        adapter_weights(quantized.adapter.path).keys() == adapter_weights(full.adapter.path).keys()
    )


def test_freeze_layers_puts_lora_on_the_upper_layers_only(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = tiny_bot(tmp_path / "bot", tiny_model_dir, freeze_layers=1)
    result = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl", max_steps=1))
    layers = {
        key.split(".layers.")[1].split(".")[0] for key in adapter_weights(result.adapter.path)
    }
    assert layers == {"1"}, "the tiny model's layer 0 stays frozen"
    too_many = tiny_bot(tmp_path / "other", tiny_model_dir, freeze_layers=2)
    with pytest.raises(HybridError, match=r"training\.freeze_layers = 2, .* 2 layers"):
        train_adapter(too_many, TrainRequest(too_many.data_dir / "small.jsonl", max_steps=1))


def test_gradient_checkpointing_changes_memory_not_the_result(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    # fp32 and no dropout, so that only the order of float sums can differ.
    losses = []
    for checkpointing in (False, True):
        bot = tiny_bot(
            tmp_path / str(checkpointing), tiny_model_dir, bf16="off", lora_dropout=0.0,
            gradient_checkpointing=checkpointing,
        )  # fmt: skip
        result = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl", max_steps=4))
        losses.append([loss for _, loss in result.history.train_loss])
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_early_stopping_publishes_the_best_epoch(tmp_path: Path, tiny_model_dir: Path) -> None:
    # A learning rate far too high: the eval loss stops improving well before epoch 6.
    bot = tiny_bot(
        tmp_path / "bot", tiny_model_dir, epochs=6, learning_rate=0.5, early_stopping_patience=2
    )
    result = train_adapter(bot, TrainRequest(bot.data_dir / "small.jsonl"))
    losses = [loss for _, loss in result.history.eval_loss]
    best = losses.index(min(losses))
    assert result.stopped_early and result.epochs == best + 3 < 6, losses
    metrics = result.adapter.manifest["metrics"]
    assert metrics["stopped_early"] and metrics["best_eval_loss"] == min(losses)


@pytest.mark.slow
def test_a_few_steps_on_the_real_default_model_then_answer_with_it(real_bot) -> None:
    from server import open_assistant

    result = train_adapter(
        real_bot, TrainRequest(real_bot.data_dir / "train.jsonl", name="e2e", max_steps=2)
    )
    assert result.steps == 2 and result.history.trained_tokens > 0
    with open_assistant(real_bot) as assistant:
        answer = assistant.answer("Do gift cards expire?", adapter=result.adapter.ref)
    assert answer.adapter == result.adapter.ref and answer.text
