"""Loss curves drawn as inline SVG by the templates (no script, no chart library):
this module scales the points; `_plot.html.j2` draws them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, MARGIN = 640, 260, 40


@dataclass(frozen=True)
class Line:
    label: str
    points: str  # "x,y x,y ..." in the SVG's coordinates
    emphasis: bool  # the run the page is about (the others are drawn faint)


@dataclass(frozen=True)
class Plot:
    lines: list[Line]
    x_label: str
    y_ticks: list[tuple[float, str]]  # (y, text)
    x_ticks: list[tuple[float, str]]
    width: int = WIDTH
    height: int = HEIGHT
    margin: int = MARGIN

    @property
    def empty(self) -> bool:
        return not self.lines


def loss_plot(
    series: Sequence[tuple[str, Sequence[tuple[float, float]], bool]], x_label: str = "step"
) -> Plot:
    """One line per (label, [(step, loss)], emphasis); every line on the same axes."""
    drawn = [(label, list(points), emphasis) for label, points, emphasis in series if points]
    if not drawn:
        return Plot([], x_label, [], [])
    xs = [x for _, points, _ in drawn for x, _ in points]
    ys = [y for _, points, _ in drawn for _, y in points]
    x0, x1 = min(xs), max(max(xs), min(xs) + 1)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5

    def at(x: float, y: float) -> str:
        sx = MARGIN + (x - x0) / (x1 - x0) * (WIDTH - 2 * MARGIN)
        sy = HEIGHT - MARGIN - (y - y0) / (y1 - y0) * (HEIGHT - 2 * MARGIN)
        return f"{sx:.1f},{sy:.1f}"

    lines = [
        Line(label, " ".join(at(x, y) for x, y in points), emphasis)
        for label, points, emphasis in drawn
    ]
    y_ticks = [
        (HEIGHT - MARGIN - i / 4 * (HEIGHT - 2 * MARGIN), f"{y0 + i / 4 * (y1 - y0):.3g}")
        for i in range(5)
    ]
    steps = sorted({round(x0 + i / 4 * (x1 - x0)) for i in range(5)})  # whole steps, once each
    x_ticks = [(MARGIN + (x - x0) / (x1 - x0) * (WIDTH - 2 * MARGIN), str(x)) for x in steps]
    return Plot(lines, x_label, y_ticks, x_ticks)
