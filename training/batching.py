"""Length-grouped batches: examples of similar length train together, so almost no
compute goes to padding, while the order still changes every epoch.

Padding-free packing (one long row, positions restarting per example) would waste no
token either, but with PyTorch's SDPA it attends through a dense block-diagonal mask:
all the cross-example attention is computed and then masked away. Grouping by length
avoids that and works with every attention implementation.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from training.rendering import IGNORE, TokenizedExample

if TYPE_CHECKING:
    import torch

_GROUP = 50  # batches whose examples are sorted by length together


def epochs_for(example_count: int) -> int:
    """OpenAI's rule for fine-tuning epochs: 3, raised so that tiny sets are seen at
    least 100 times in all (at most 25 epochs), lowered so that huge ones stop near
    25,000 examples seen."""
    if example_count * 3 < 100:
        return min(25, math.ceil(100 / example_count))
    if example_count * 3 > 25_000:
        return max(1, 25_000 // example_count)
    return 3


def epoch_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int
) -> list[list[int]]:
    """The batches (lists of example indices) of one epoch: shuffled, then sorted by
    length within groups of _GROUP batches, then the batches shuffled. The same seed
    and epoch always give the same batches (a resumed run replays them exactly)."""
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    span = batch_size * _GROUP
    batches = []
    for start in range(0, len(order), span):
        group = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    rng.shuffle(batches)
    return batches


def micro_batches(
    batch: Sequence[TokenizedExample], max_tokens: int
) -> list[list[TokenizedExample]]:
    """Split one optimizer step's examples so that each micro-batch, padded to its
    longest example, holds at most `max_tokens` tokens (one example always fits)."""
    ordered = sorted(batch, key=lambda example: len(example.input_ids))
    result: list[list[TokenizedExample]] = []
    current: list[TokenizedExample] = []
    for example in ordered:
        padded = len(example.input_ids) * (len(current) + 1)
        if current and padded > max_tokens:
            result.append(current)
            current = []
        current.append(example)
    if current:
        result.append(current)
    return result


def process_micro_batches(
    batch: Sequence[TokenizedExample], max_tokens: int, rank: int, count: int
) -> list[list[TokenizedExample]]:
    """Process `rank`'s micro-batches of one optimizer step that `count` processes share:
    every count-th example of the length-sorted batch (so the shares cost about the same),
    split as micro_batches does, then padded with empty micro-batches to as many as the
    busiest process has. Every process then makes the same number of forward and backward
    calls, which a distributed wrapper may turn into collective ones."""
    ordered = sorted(batch, key=lambda example: len(example.input_ids))
    splits = [micro_batches(ordered[share::count], max_tokens) for share in range(count)]
    calls = max(len(split) for split in splits)
    mine = splits[rank]
    return mine + [[] for _ in range(calls - len(mine))]


def collate(
    examples: Sequence[TokenizedExample], pad_id: int, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Right-padded tensors on `device`; padding is masked out of attention and of the loss."""
    import torch

    width = max(len(example.input_ids) for example in examples)
    ids, labels, mask = [], [], []
    for example in examples:
        pad = width - len(example.input_ids)
        ids.append(example.input_ids + [pad_id] * pad)
        labels.append(example.labels + [IGNORE] * pad)
        mask.append([1] * len(example.input_ids) + [0] * pad)
    return {
        "input_ids": torch.tensor(ids, device=device),
        "labels": torch.tensor(labels, device=device),
        "attention_mask": torch.tensor(mask, device=device),
    }
