"""The rows a decoding batch holds: their shared KV cache and attention mask.

Rows are left-padded to one length, so each step feeds every row one token at the same
column. Requests join between steps (their prompts' caches are padded and stacked onto
the batch's) and leave when they finish (their rows are dropped, and any leading columns
that only padding still uses are trimmed).
"""

from __future__ import annotations

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
            self.cache, self.mask = cache, mask
            return
        width = max(self.mask.shape[1], mask.shape[1])
        layers = [
            tuple(
                torch.cat([_pad_left(old, width), _pad_left(new, width)], dim=0)
                for old, new in ((old_k, new_k), (old_v, new_v))
            )
            for (old_k, old_v, _), (new_k, new_v, _) in zip(self.cache, cache, strict=True)
        ]
        self.cache = DynamicCache(ddp_cache_data=layers)
        self.mask = torch.cat([_pad_left(self.mask, width), _pad_left(mask, width)], dim=0)

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
        self.cache.batch_select_indices(index)
        self.mask = self.mask[index]
        first = int(self.mask.any(dim=0).nonzero()[0])
        if first:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys = layer.keys[..., first:, :]
                layer.values = layer.values[..., first:, :]


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
