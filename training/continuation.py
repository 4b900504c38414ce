"""Starting a run from a trained version (`hybrid train --start-from NAME@V`, and
`hybrid retrain`'s warm start): the new LoRA layers begin with that version's weights,
so the run continues its training rather than starting from the base model, as a
fine-tuning service's "fine-tune a fine-tuned model" does. A retrained version that
starts where the active one ended keeps more of what it could do.
"""

from __future__ import annotations

from typing import Any

import msgspec

from hybrid.bot import Bot
from hybrid.errors import InvalidInputError
from hybrid.types import AdapterRef
from training.registry import AdapterRecord, AdapterRegistry

# The [training] settings that decide the LoRA layers' names and shapes: a version
# trained under other values has weights that do not fit the new run's layers.
LAYER_SETTINGS = ("lora_r", "lora_alpha", "target_modules", "freeze_layers")


def start_conflict(bot: Bot, version: AdapterRecord) -> str | None:
    """Why a run under the bot's settings cannot start from `version`, or None."""
    manifest = version.manifest
    if manifest.get("base_model") != bot.config.models.base:
        return f"it adapts {manifest.get('base_model')!r}, not models.base"
    trained_with: dict[str, Any] = manifest.get("hyperparameters", {})
    now = msgspec.to_builtins(bot.config.training)
    differ = [
        f"training.{key} is {now[key]!r}, it was trained with {trained_with.get(key)!r}"
        for key in LAYER_SETTINGS
        if trained_with.get(key) != now[key]
    ]
    return "; ".join(differ) or None


def starting_version(bot: Bot, ref: AdapterRef) -> AdapterRecord:
    """The version `ref` names (NAME: its active one), if a run can start from it."""
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        version = registry.get(ref)
    conflict = start_conflict(bot, version)
    if conflict:
        raise InvalidInputError(
            f"cannot start from {version.ref}: {conflict}",
            hint="train from the base model, or with the settings that version was trained with",
            param="start_from",
        )
    return version


def load_start(model: Any, version: AdapterRecord) -> None:
    """Copy `version`'s LoRA weights into `model`'s freshly made LoRA layers."""
    from peft import get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = load_file(str(version.path / "adapter_model.safetensors"))
    expected = {name: tuple(t.shape) for name, t in get_peft_model_state_dict(model).items()}
    if {name: tuple(t.shape) for name, t in weights.items()} != expected:
        raise InvalidInputError(
            f"cannot start from {version.ref}: its weights do not fit this run's LoRA layers",
            hint="train from the base model",
            param="start_from",
        )
    set_peft_model_state_dict(model, weights)
