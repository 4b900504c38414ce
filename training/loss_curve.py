"""The loss-curve PNG saved with every adapter: train loss per step, eval loss per epoch."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def plot_loss_curve(
    train: Sequence[tuple[int, float]], evaluation: Sequence[tuple[int, float]], target: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 4), dpi=100)
    if train:
        steps, losses = zip(*train, strict=True)
        axes.plot(steps, losses, label="train loss", linewidth=1)
    if evaluation:
        steps, losses = zip(*evaluation, strict=True)
        axes.plot(steps, losses, "o-", label="eval loss (per epoch)")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("loss per trained token")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(target)
    pyplot.close(figure)
