"""The adapters loaded onto the engine's base model, and running a forward pass with
each row's own adapter.

Each adapter is loaded under its `name@version` (peft's adapter name), so a promoted
version is a new identity. A step whose rows all use one adapter (or none) runs it
alone; a mixed step adds each row's own LoRA update from stacked weights
(server/mixed_lora.py), or, for LoRA variants that cannot be stacked, passes peft one
adapter name per row. peft's own switches (`disable_adapter()`, `set_adapter()`) walk
every module on each call, a third of a decoding step on a 135M model, so the LoRA
layers are switched on, off or to another adapter only when a step needs a change.
"""

from __future__ import annotations

from typing import Any

from hybrid.models import MODEL_LOADING
from server.mixed_lora import StackedLora

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


class AdapterSet:
    def __init__(self, model: Any) -> None:
        self.model = model  # the base model; peft adds the LoRA layers to it in place
        self.loaded: set[str] = set()
        self._peft: Any = None  # the PeftModel, once a first adapter is loaded
        self._active: str | None = None  # the adapter the LoRA layers apply to a whole batch
        self._enabled = False
        self._stacked: StackedLora | None = None  # for steps that mix adapters

    def load(self, key: str, path: str) -> None:
        from peft import PeftModel

        with MODEL_LOADING:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self.model, path, adapter_name=key)
            else:
                self._peft.load_adapter(path, adapter_name=key)
        self._peft.eval()
        self.loaded.add(key)
        if self._stacked is not None:  # restacked, with this one, at the next mixed step
            self._stacked.close()
            self._stacked = None
        # Loading may change which adapter is active: set both again at the next step.
        self._peft.base_model.enable_adapter_layers()
        self._active, self._enabled = None, True

    def forward(self, arguments: dict[str, Any], keys: list[str]) -> Any:
        """The model's output with row i through adapter keys[i] (BASE: none)."""
        if self._peft is None:
            return self.model(**arguments)
        distinct = set(keys)
        if len(distinct) > 1:
            if self._stacked is None:
                self._stacked = StackedLora(self._peft)
            if self._stacked.usable:
                self._switch(False)  # the stacked update stands in for the LoRA layers
                with self._stacked.rows(keys):
                    return self._peft(**arguments)
            self._switch(True)
            return self._peft(**arguments, adapter_names=keys)
        self._switch(distinct != {BASE})
        if distinct != {BASE} and keys[0] != self._active:
            self._peft.set_adapter(keys[0])
            self._active = keys[0]
        return self._peft(**arguments)

    def _switch(self, enabled: bool) -> None:
        if enabled != self._enabled:
            if enabled:
                self._peft.base_model.enable_adapter_layers()
            else:
                self._peft.base_model.disable_adapter_layers()
            self._enabled = enabled
