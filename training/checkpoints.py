"""Checkpoints of a training run, for `hybrid train --resume` after a crash or kill -9.

A run lives in `.hybrid/runs/<adapter name>/`: `run.json` says what it trains (data
hash, settings) and `step-NNNNNN/checkpoint.pt` holds everything needed to continue
exactly: LoRA weights, optimizer and scheduler state, RNG states, the position in the
data and the history so far. Each checkpoint is written to a temporary folder and
renamed into place, so the newest complete one is always readable; older ones are then
deleted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from hybrid.errors import ConflictError
from hybrid.staging import staged_folder

RUN_FILE = "run.json"
STATE_FILE = "checkpoint.pt"


class RunFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def start(self, identity: dict[str, Any]) -> None:
        """A fresh run: anything an earlier run of this name left is replaced."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        (self.folder / RUN_FILE).write_text(json.dumps(identity, indent=2, sort_keys=True))

    def resume(self, identity: dict[str, Any]) -> dict[str, Any]:
        """The newest checkpoint of the run, after checking it trains the same thing."""
        try:
            recorded = json.loads((self.folder / RUN_FILE).read_text())
        except (OSError, ValueError):
            raise ConflictError(
                f"nothing to resume: no unfinished run in {self.folder}",
                hint="run `hybrid train` without --resume",
            ) from None
        changed = sorted(k for k in identity.keys() | recorded.keys()
                         if identity.get(k) != recorded.get(k))  # fmt: skip
        if changed:
            raise ConflictError(
                f"cannot resume: the run in {self.folder} was started with a different "
                f"{', '.join(changed)}",
                hint="resume with the same data and settings, or start over without --resume",
            )
        steps = self._checkpoints()
        if not steps:
            raise ConflictError(
                f"nothing to resume: the run in {self.folder} has no checkpoint yet",
                hint="run `hybrid train` without --resume",
            )
        import torch

        return torch.load(steps[-1] / STATE_FILE, weights_only=False)

    def has_checkpoint(self) -> bool:
        return bool(self._checkpoints())

    def _checkpoints(self) -> list[Path]:
        return sorted(self.folder.glob("step-*"))

    def save(self, step: int, state: dict[str, Any]) -> None:
        import torch

        final = self.folder / f"step-{step:06d}"
        with staged_folder(final, replace=True) as staging:
            torch.save(state, staging / STATE_FILE)
        for older in self.folder.glob("step-*"):
            if older != final:
                shutil.rmtree(older, ignore_errors=True)

    def finish(self) -> None:
        """The adapter is published: the run has nothing left to resume."""
        shutil.rmtree(self.folder, ignore_errors=True)
