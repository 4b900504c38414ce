"""The rows a decoding batch holds: their shared KV cache and attention mask; and the
caches of prompt prefixes that requests share.

Rows are padded on the left to one length, so each step feeds every row one token at
the same column; the mask and each row's positions skip the padding. Requests join
between steps (their prompts' caches are padded and stacked onto the batch's) and leave
when they finish (their rows are dropped, and any leading columns that only padding
still uses are trimmed).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class KVBatch:
    def __init__(self) -> None:
        self.cache: Any = None  # a transformers DynamicCache, rows in batch order
        self.mask: torch.Tensor | None = None  # (rows, columns) 1 = a real token

    @property
    def rows(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    def add(self, cache: Any, mask: torch.Tensor) -> None:
        """Stack new rows (a prefilled cache and its mask) below the current ones."""
        import torch
        from transformers import DynamicCache

        if self.cache is None:
            layers = [(keys, values) for keys, values, *_ in cache]
            self.mask = mask
        else:
            width = max(self.mask.shape[1], mask.shape[1])
            layers = [
                tuple(
                    torch.cat([_pad_left(old, width), _pad_left(new, width)], dim=0)
                    for old, new in ((old_k, new_k), (old_v, new_v))
                )
                for (old_k, old_v, *_), (new_k, new_v, *_) in zip(self.cache, cache, strict=True)
            ]
            self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(mask, width)], dim=0)
        self.cache = DynamicCache()
        roomy = _roomy_layer_class()
        self.cache.layers = [roomy(keys, values) for keys, values in layers]

    def next_positions(self) -> torch.Tensor:
        """Open a column for the token each row is fed next; that token's positions."""
        import torch

        self.mask = torch.cat([self.mask, self.mask.new_ones(self.rows, 1)], dim=1)
        return (self.mask.sum(dim=1, keepdim=True) - 1).long()

    def keep(self, rows: list[int]) -> None:
        """Keep only these rows (in this order); trim columns no kept row uses."""
        import torch

        if not rows:
            self.cache = self.mask = None
            return
        index = torch.tensor(rows, dtype=torch.long)
        self.mask = self.mask[index]
        first = int(self.mask.any(dim=0).nonzero()[0])
        self.mask = self.mask[:, first:]
        for layer in self.cache.layers:
            layer.reset_to(layer.keys[index, :, first:], layer.values[index, :, first:])


SPARE_COLUMNS = 64


@functools.cache  # defined on first use: transformers is imported only when generating
def _roomy_layer_class() -> type:
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        """A cache layer with spare columns: each step's keys and values are written into
        them, where transformers' DynamicLayer concatenates, copying the whole cache at
        every step (a sixth of a decoding step at batch 8 on a CPU)."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            super().__init__()
            self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True
            self.reset_to(keys, values)

        def reset_to(self, keys: torch.Tensor, values: torch.Tensor) -> None:
            """Hold these (copied, with room to grow by half again)."""
            length = keys.shape[-2]
            room = max(SPARE_COLUMNS, length // 2)
            self._keys = _with_room(keys, room)
            self._values = _with_room(values, room)
            self._length = length
            self.keys, self.values = keys, values
            self._expose()

        def update(self, key_states, value_states, *args: Any, **kwargs: Any):
            end = self._length + key_states.shape[-2]
            if end > self._keys.shape[-2]:
                self.reset_to(self.keys, self.values)
            self._keys[..., self._length : end, :] = key_states
            self._values[..., self._length : end, :] = value_states
            self._length = end
            self._expose()
            return self.keys, self.values

        def _expose(self) -> None:
            self.keys = self._keys[..., : self._length, :]
            self.values = self._values[..., : self._length, :]

    return RoomyLayer


def _with_room(tensor: torch.Tensor, room: int) -> torch.Tensor:
    import torch

    shape = list(tensor.shape)
    length = shape[-2]
    shape[-2] += room
    buffer = torch.empty(shape, dtype=tensor.dtype, device=tensor.device)
    buffer[..., :length, :] = tensor
    return buffer


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zeros before the sequence dimension's start (the last dimension for a mask, the
    second to last for keys and values) up to `width`."""
    import torch

    dim = -1 if tensor.dim() == 2 else -2
    missing = width - tensor.shape[dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class PrefixCache:
    """KV caches of prompt prefixes that many requests share (a bot's system turn comes
    first in every prompt), one per (prefix, adapter): computed once, then given to each
    prompt that starts with it, so only the rest of a prompt is prefilled. Keyed by
    the adapter's name@version, so a promoted version never reuses an old entry."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity = capacity
        self._entries: collections.OrderedDict[tuple[tuple[int, ...], str], Any] = (
            collections.OrderedDict()
        )

    def cache(self, prefix: tuple[int, ...], key: str, compute: Callable[[str], Any]) -> Any:
        """A DynamicCache of `prefix` through adapter `key` (`compute(key)` makes a
        missing one); the forward pass it is given to extends it without changing it."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=self._get(prefix, key, compute))

    def _get(self, prefix: tuple[int, ...], key: str, compute: Callable[[str], Any]) -> Any:
        entry = self._entries.get((prefix, key))
        if entry is None:
            entry = [(keys, values) for keys, values, *_ in compute(key)]
            self._entries[(prefix, key)] = entry
            if len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        self._entries.move_to_end((prefix, key))
        return entry
