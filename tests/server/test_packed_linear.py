"""The engine's CPU linear layers (oneDNN-reordered weights) against plain nn.Linear."""

from __future__ import annotations

import copy

import pytest
import torch

from server.packed_linear import pack_linear_layers


def layers(dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 160), torch.nn.SiLU(), torch.nn.Linear(160, 48, bias=False)
    ).to(dtype)


@pytest.mark.parametrize(("dtype", "tolerance"), [("float32", 1e-5), ("bfloat16", 2e-2)])
def test_packed_layers_compute_what_plain_ones_do(dtype: str, tolerance: float) -> None:
    plain = layers(getattr(torch, dtype))
    packed = copy.deepcopy(plain)
    assert pack_linear_layers(packed, batch_hint=8) == 2
    with torch.inference_mode():
        for shape in [(1, 1, 64), (8, 1, 64), (1, 300, 64), (3, 64)]:  # decoding, prompt
            x = torch.randn(shape).to(plain[0].weight.dtype)
            expected = plain(x)
            got = packed(x)
            assert got.shape == expected.shape
            assert torch.allclose(got.float(), expected.float(), atol=tolerance, rtol=tolerance)


def test_a_weight_changed_after_packing_is_the_one_used() -> None:
    model = layers(torch.float32)
    pack_linear_layers(model, batch_hint=8)
    x = torch.randn(4, 64)
    with torch.inference_mode():
        before = model(x)
    with torch.no_grad():
        model[2].weight.mul_(2)
    with torch.inference_mode():
        assert torch.allclose(model(x), before * 2, atol=1e-5)


def test_training_a_packed_model_still_gets_gradients() -> None:
    model = layers(torch.float32)
    pack_linear_layers(model, batch_hint=8)
    model(torch.randn(4, 64)).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
