"""This machine's matmul throughput in fp32 and bf16: the reference that later benchmarks
(training, serving) express their speed against."""

from __future__ import annotations

from benchmarks.common import Figure, median_seconds

SIZE = 2048


def run() -> list[Figure]:
    import torch

    flops = 2 * SIZE**3
    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a = torch.randn(SIZE, SIZE, dtype=dtype)
        b = torch.randn(SIZE, SIZE, dtype=dtype)
        seconds = median_seconds(lambda a=a, b=b: a @ b, repeats=10, warmup=2)
        rates[dtype] = flops / seconds / 1e9
    return [
        Figure(
            "matmul fp32", round(rates[torch.float32], 1), "GFLOP/s", f"{SIZE}x{SIZE}, median of 10"
        ),
        Figure(
            "matmul bf16",
            round(rates[torch.bfloat16], 1),
            "GFLOP/s",
            f"{SIZE}x{SIZE}, median of 10",
        ),
        Figure(
            "bf16 / fp32", round(rates[torch.bfloat16] / rates[torch.float32], 2), "x", "same run"
        ),
    ]
