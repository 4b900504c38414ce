"""Forward passes whose rows use different adapters, without peft's per-adapter loop.

peft's mixed batches (`adapter_names=`) run, in every LoRA layer, a gather, two small
products and a scatter for each adapter in the batch: on a CPU, with 4 adapters, a
decoding step of SmolLM2-135M at batch 8 took about twice a step on one adapter. Here
the LoRA weights of all loaded adapters are stacked once per layer, A row-wise and B
column-wise (with each adapter's scaling folded into its columns), and a mixed step
adds to each layer's base output

    ((x @ A_all.T) * rows) @ B_all.T

where `rows` keeps, for each row of the batch, the columns of its own adapter (none for
a base-model row): two products per layer, whatever the number of adapters. It is the
same update, summed in another order. `rows` is per thread, so passes with different
rows may run at the same time.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any


class StackedLora:
    """Built for the adapters loaded at the time; `close()` it before loading another."""

    def __init__(self, peft_model: Any) -> None:
        import torch
        from peft.tuners.lora import Linear

        layers = [m for m in peft_model.modules() if isinstance(m, Linear)]
        self.usable = all(not layer.lora_variant for layer in layers)
        names = sorted({name for layer in layers for name in layer.lora_A})
        ranks = {name: layer.r[name] for layer in layers for name in layer.lora_A}
        self._columns: dict[str, slice] = {}
        start = 0
        for name in names:
            self._columns[name] = slice(start, start + ranks[name])
            start += ranks[name]
        self._stacks: dict[int, tuple[Any, Any]] = {}
        self._local = threading.local()  # .rows: set for the duration of a pass
        self._hooks = []
        for layer in layers if self.usable else []:
            base = layer.get_base_layer()
            a_parts, b_parts = [], []
            for name in names:
                if name in layer.lora_A:  # an adapter may leave some layers out
                    a_parts.append(layer.lora_A[name].weight)
                    b_parts.append(layer.lora_B[name].weight * layer.scaling[name])
                else:
                    a_parts.append(base.weight.new_zeros(ranks[name], base.in_features))
                    b_parts.append(base.weight.new_zeros(base.out_features, ranks[name]))
            stacked = (torch.cat(a_parts, dim=0).detach(), torch.cat(b_parts, dim=1).detach())
            self._stacks[id(layer)] = stacked
            self._hooks.append(layer.register_forward_hook(self._add_update))
        self._width = start

    def close(self) -> None:
        for hook in self._hooks:
            hook.remove()

    @contextlib.contextmanager
    def rows(self, keys: list[str]) -> Iterator[None]:
        """Apply each row's adapter (`keys`, one per row; a key not loaded is the base
        model) in the forward passes this thread runs inside. The model's own LoRA layers
        must be switched off meanwhile."""
        import torch

        rows = None
        if any(key in self._columns for key in keys):
            rows = torch.zeros(len(keys), 1, self._width)
            for row, key in enumerate(keys):
                if key in self._columns:
                    rows[row, 0, self._columns[key]] = 1.0
        self._local.rows = rows
        try:
            yield
        finally:
            self._local.rows = None

    def _add_update(self, layer: Any, inputs: tuple[Any, ...], output: Any) -> Any:
        rows = getattr(self._local, "rows", None)
        if rows is None:
            return None
        a, b = self._stacks[id(layer)]
        x = inputs[0].to(a.dtype)
        return output + (((x @ a.T) * rows) @ b.T).to(output.dtype)
