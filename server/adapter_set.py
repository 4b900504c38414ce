"""The adapters loaded onto the engine's base model, and running a forward pass with
each row's own adapter.

Each adapter is loaded under its `name@version` (peft's adapter name), so a promoted
version is a new identity. The LoRA weights of all loaded adapters are stacked
(server/mixed_lora.py) and each forward pass adds every row's own update, whatever the
mix of adapters in the batch; the stack is thread-local state, so the engine's prefill
and decoding threads run passes at the same time. peft's own switches
(`set_adapter()`, `adapter_names=`) change the model for every thread, so the LoRA
variants that cannot be stacked run one pass at a time, switching only when a pass needs
a change (peft walks every module on each switch: a third of a decoding step on a 135M
model). Loading an adapter waits for the passes in flight and holds new ones off.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from hybrid.models import MODEL_LOADING
from server.mixed_lora import StackedLora

BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


class AdapterSet:
    def __init__(self, model: Any) -> None:
        self.model = model  # the base model; peft adds the LoRA layers to it in place
        self.loaded: set[str] = set()
        self._peft: Any = None  # the PeftModel, once a first adapter is loaded
        self._stacked: StackedLora | None = None  # the loaded adapters' weights, stacked
        self._active: str | None = None  # unstackable variants: the adapter peft applies
        self._enabled = False
        self._passes = _PassLock()

    def load(self, key: str, path: str) -> None:
        from peft import PeftModel

        with self._passes.alone(), MODEL_LOADING:
            if self._peft is None:
                self._peft = PeftModel.from_pretrained(self.model, path, adapter_name=key)
            else:
                self._peft.load_adapter(path, adapter_name=key)
            self._peft.eval()
            self.loaded.add(key)
            if self._stacked is not None:
                self._stacked.close()
            self._stacked = StackedLora(self._peft)
            # Stacked updates stand in for peft's LoRA layers; otherwise loading may have
            # changed which adapter peft applies: set it again at the next pass.
            self._active = None
            self._set_layers(not self._stacked.usable)

    def forward(self, arguments: dict[str, Any], keys: list[str]) -> Any:
        """The model's output with row i through adapter keys[i] (BASE: none)."""
        with self._passes.shared():
            if self._stacked is None:
                return self.model(**arguments)
            if self._stacked.usable:
                with self._stacked.rows(keys):
                    return self._peft(**arguments)
        with self._passes.alone():
            return self._forward_switching(arguments, keys)

    def _forward_switching(self, arguments: dict[str, Any], keys: list[str]) -> Any:
        distinct = set(keys)
        if len(distinct) > 1:
            self._switch(True)
            return self._peft(**arguments, adapter_names=keys)
        self._switch(distinct != {BASE})
        if distinct != {BASE} and keys[0] != self._active:
            self._peft.set_adapter(keys[0])
            self._active = keys[0]
        return self._peft(**arguments)

    def _switch(self, enabled: bool) -> None:
        if enabled != self._enabled:
            self._set_layers(enabled)

    def _set_layers(self, enabled: bool) -> None:
        """Turn peft's LoRA layers on or off (peft walks every module to do it)."""
        if enabled:
            self._peft.base_model.enable_adapter_layers()
        else:
            self._peft.base_model.disable_adapter_layers()
        self._enabled = enabled


class _PassLock:
    """Forward passes share the model; `alone()` waits for those in flight and holds new
    ones off until it is done (a waiting `alone()` goes before new passes)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._passes = 0
        self._alone_wanted = 0
        self._alone = False

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            while self._alone or self._alone_wanted:
                self._changed.wait()
            self._passes += 1
        try:
            yield
        finally:
            with self._changed:
                self._passes -= 1
                self._changed.notify_all()

    @contextlib.contextmanager
    def alone(self) -> Iterator[None]:
        with self._changed:
            self._alone_wanted += 1
            while self._alone or self._passes:
                self._changed.wait()
            self._alone_wanted -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._changed:
                self._alone = False
                self._changed.notify_all()
