"""Long work in a log (stderr not a terminal): plain lines with the count, the values
and the time left, every `log_every` seconds and once at the end."""

from __future__ import annotations

import pytest

from hybrid.cli.progress import ProgressReport


def test_a_log_gets_a_line_per_interval_and_the_final_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with ProgressReport("Training", fields=("loss {loss}",), log_every=0) as report:
        for step in (1, 2):
            report.update(step, 4, loss=f"{2 / step:.2f}")
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(", ")[:2] for line in lines] == [
        ["Training: 1/4", "loss 2.00"],
        ["Training: 2/4", "loss 1.00"],
    ]
    assert all(line.endswith("left") for line in lines)
    with ProgressReport("Embedding chunks", log_every=3600) as report:
        for done in range(1, 81):
            report.update(done, 80)
    assert capsys.readouterr().err.splitlines() == ["Embedding chunks: 80/80, 0s left"]
