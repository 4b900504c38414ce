"""What a training run records: its identity (what a resumed run must share with the run
it continues) and the adapter's manifest (what made it, for the registry)."""

from __future__ import annotations

import hashlib
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from hybrid.bot import Bot
from hybrid.config import TrainingSettings
from training.base_model import BaseModel

if TYPE_CHECKING:
    from training.recipe import History, TrainRequest


def file_hash(*paths: Path | None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None:
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_identity(bot: Bot, request: TrainRequest, settings: TrainingSettings) -> dict[str, Any]:
    """What a resumed run must share with the run it continues."""
    return {
        "base_model": bot.config.models.base,
        "data_hash": file_hash(request.train_file, request.eval_file),
        "settings": msgspec.to_builtins(settings),
        "qlora": request.qlora,
        "force": request.force,
        "max_steps": request.max_steps,
        "with_retrieval": request.retriever is not None,
        "start_from": str(request.start_from) if request.start_from else None,
    }


def adapter_manifest(
    bot: Bot,
    base: BaseModel,
    request: TrainRequest,
    identity: dict[str, Any],
    history: History,
    steps: int,
    epochs: int,
    stopped_early: bool,
    processes: int,
) -> dict[str, Any]:
    weights = sorted(Path(base.path).glob("*.safetensors")) if Path(base.path).is_dir() else []
    return {
        "base_model": bot.config.models.base,
        "base_model_path": base.path,
        "base_model_hash": file_hash(*weights) if weights else None,
        "train_file": str(request.train_file),
        "eval_file": str(request.eval_file) if request.eval_file else None,
        "data_hash": identity["data_hash"],
        "dataset": request.dataset,
        "parent": request.parent,
        "started_from": identity["start_from"],
        "qlora": request.qlora,
        "with_retrieval": request.retriever is not None,
        "index_version": request.index_version,
        "hyperparameters": identity["settings"],
        "metrics": {
            "steps": steps,
            "epochs": epochs,
            "stopped_early": stopped_early,
            "final_train_loss": history.train_loss[-1][1] if history.train_loss else None,
            "eval_loss": history.eval_loss,
            "best_eval_loss": min((loss for _, loss in history.eval_loss), default=None),
            "train_loss": history.train_loss,
        },
        "timings": {
            "train_seconds": round(history.seconds, 2),
            "tokens": history.tokens,
            "trained_tokens": history.trained_tokens,
            "positions": history.positions,
            "tokens_per_second": round(history.tokens_per_second, 1),
            "processes": processes,
        },
        "versions": {name: package_version(name) for name in ("torch", "transformers", "peft")},
    }
