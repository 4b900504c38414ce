"""Taking an adapter out of the registry: a copy of its PEFT folder for another server
(vLLM, LoRAX, TGI load it as it is), or a merged full model for a server without LoRA."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from hybrid.errors import ConflictError
from hybrid.staging import staged_folder
from training.base_model import BaseModel
from training.registry import MANIFEST, AdapterRecord


def export_adapter(record: AdapterRecord, target: Path) -> Path:
    """Copy the adapter's folder (PEFT files, manifest, loss curve) to `target`."""
    _staged_copy(target, lambda staging: shutil.copytree(record.path, staging, dirs_exist_ok=True))
    return target


def merge_adapter(base: BaseModel, record: AdapterRecord, target: Path) -> Path:
    """Write base + adapter as one ordinary model folder (weights, config, tokenizer)."""
    from peft import PeftModel

    def write(staging: Path) -> None:
        merged = PeftModel.from_pretrained(base.model, str(record.path)).merge_and_unload()
        merged.save_pretrained(staging)
        base.tokenizer.save_pretrained(staging)
        shutil.copy(record.path / MANIFEST, staging / MANIFEST)

    _staged_copy(target, write)
    return target


def _staged_copy(target: Path, write: Callable[[Path], object]) -> None:
    """Fill a temporary sibling of `target`, then rename it: `target` appears complete
    or not at all, and an existing folder is never overwritten."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConflictError(f"{target} already exists", hint="name a new folder")
    with staged_folder(target) as staging:  # renamed over an empty folder, checked above
        write(staging)
