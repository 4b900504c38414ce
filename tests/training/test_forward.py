"""The training forward pass: computing the shared system prompt once per micro-batch
gives the same loss and the same gradients as running every example whole; the pool
dropout keeps peft's drop rate and scale."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

from training import load_tokenizer, read_dataset, tokenize_example
from training.dropout import use_pool_dropout
from training.forward import MIN_SHARED_PREFIX, shared_prefix_length, token_losses
from training.rendering import IGNORE

SAMPLE = Path(__file__).resolve().parents[2] / "hybrid/templates/support/data/train.jsonl"


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path):
    """Eight sample conversations (same system prompt, different questions), tokenized."""
    tokenizer = load_tokenizer(
        str(tiny_model_dir), base_dir=tiny_model_dir, models_dir=tiny_model_dir
    )
    return [tokenize_example(tokenizer, e) for e in read_dataset(SAMPLE).examples[:8]]


def lora_model(tiny_model_dir: Path, dropout: float = 0.0):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = LoraConfig(
        r=4,
        lora_dropout=dropout,
        target_modules="all-linear",
        init_lora_weights=False,  # a random B, so that every LoRA weight gets a gradient
        task_type="CAUSAL_LM",
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_kernels=False)
    return get_peft_model(model, config)


def test_the_shared_prefix_ends_before_the_first_trained_prediction(examples) -> None:
    length = shared_prefix_length(examples)
    assert length >= MIN_SHARED_PREFIX, "the sample's system prompt is shared"
    assert len({tuple(e.input_ids[:length]) for e in examples}) == 1
    # Labels inside the prefix, and the one its last position predicts, are not trained.
    assert all(label == IGNORE for e in examples for label in e.labels[: length + 1])
    # It is as long as that allows: the examples differ next, or the next label is trained.
    first_trained = min(
        next(i for i, label in enumerate(e.labels) if label != IGNORE) for e in examples
    )
    assert length == first_trained - 1 or len({e.input_ids[length] for e in examples}) > 1


def test_sharing_the_prefix_gives_the_same_loss_and_gradients(tiny_model_dir, examples) -> None:
    import torch

    results = {}
    for share in (False, True):
        model = lora_model(tiny_model_dir)
        model.train()
        result = token_losses(model, examples, pad_id=0, autocast=nullcontext, share_prefix=share)
        result.loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results[share] = (result, grads)
    (plain, plain_grads), (shared, shared_grads) = results[False], results[True]
    assert plain.trained_tokens == shared.trained_tokens > 0
    assert torch.allclose(plain.loss, shared.loss, rtol=1e-5), (plain.loss, shared.loss)
    assert plain_grads.keys() == shared_grads.keys() and len(plain_grads) == 2 * 7 * 2
    for name, grad in plain_grads.items():
        assert grad.abs().sum() > 0, name
        difference = float((grad - shared_grads[name]).norm() / grad.norm())
        assert difference < 1e-5, (name, difference)  # float32 summation order only
    # The prefix was computed once instead of eight times.
    prefix = shared_prefix_length(examples)
    assert plain.positions == sum(len(e.input_ids) for e in examples)
    assert shared.positions == plain.positions - 7 * prefix


def test_pool_dropout_keeps_the_rate_and_scale_and_varies(tiny_model_dir) -> None:
    import torch

    model = lora_model(tiny_model_dir, dropout=0.25)
    use_pool_dropout(model, max_tokens=512)
    dropout = model.base_model.model.model.layers[0].self_attn.q_proj.lora_dropout["default"]
    assert type(dropout).__name__ == "PoolDropout"
    x = torch.ones(400, 32)
    model.train()
    first, second = dropout(x), dropout(x)
    assert first.unique().tolist() == [0.0, pytest.approx(1 / 0.75)]
    assert abs(float((first == 0).float().mean()) - 0.25) < 0.02
    assert not torch.equal(first, second), "each call draws a different mask"
    model.eval()
    assert torch.equal(dropout(x), x), "no dropout in eval mode"


def test_pool_dropout_masks_follow_the_torch_seed(tiny_model_dir) -> None:
    import torch

    masks = []
    for _ in range(2):
        model = lora_model(tiny_model_dir, dropout=0.1)
        use_pool_dropout(model, max_tokens=64)
        dropout = model.base_model.model.model.layers[1].mlp.down_proj.lora_dropout["default"]
        model.train()
        masks.append(dropout(torch.ones(50, 64)))
    assert torch.equal(masks[0], masks[1])
