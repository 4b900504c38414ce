"""Folders published atomically: whole or not at all, and what a killed writer left is
removed by the next writer in the same place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid.staging import staged_folder

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from hybrid.staging import staged_folder
with staged_folder(Path(sys.argv[1])) as staging:
    (staging / "checkpoint.pt").write_bytes(b"half of it")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_folder_appears_whole_and_a_failed_one_not_at_all(tmp_path: Path) -> None:
    with staged_folder(tmp_path / "step-000002") as staging:
        (staging / "state").write_text("complete")
    assert (tmp_path / "step-000002" / "state").read_text() == "complete"
    with pytest.raises(RuntimeError), staged_folder(tmp_path / "step-000004") as staging:
        (staging / "state").write_text("half")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-000002"]
    with staged_folder(tmp_path / "step-000002", replace=True) as staging:
        (staging / "state").write_text("newer")
    assert (tmp_path / "step-000002" / "state").read_text() == "newer"


def test_what_a_killed_writer_left_is_removed_by_the_next_writer(tmp_path: Path) -> None:
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WRITER, str(tmp_path / "step-000006")], capture_output=True
    )
    assert killed.returncode == -9, killed.stderr
    (leftover,) = tmp_path.iterdir()
    assert leftover.name.startswith(".step-000006.tmp-")
    # A staging folder of a live process (this one) is someone's work in progress.
    live = tmp_path / f".step-000008.tmp-{os.getpid()}-1"
    live.mkdir()
    with staged_folder(tmp_path / "step-000010") as staging:
        (staging / "state").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "step-000010"]
