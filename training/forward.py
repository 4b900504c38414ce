"""The training forward pass: the summed loss over the trained tokens of a micro-batch.

Two savings, both exact (the same loss and gradients, tested):
- The vocabulary projection, a fifth of a small model's compute, runs only on the
  positions whose next token is trained, not on every prompt token.
- A prefix shared by every example of the micro-batch (in support data, the system
  prompt: over half of each example's tokens in the sample bot) runs through the model
  once; the rest of each example attends to its keys and values through the model's
  KV cache, and the gradients flow back through that cache into the prefix. With LoRA
  dropout, the prefix's masks are therefore shared by the micro-batch's examples.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any

from training.batching import collate
from training.rendering import IGNORE, TokenizedExample

# Below this many shared tokens, a second pass through the model costs more than it saves.
MIN_SHARED_PREFIX = 16


@dataclass(frozen=True)
class MicroBatchLoss:
    loss: Any  # summed cross-entropy (a torch scalar with its graph)
    trained_tokens: int  # tokens the loss covers
    positions: int  # non-padding positions the model computed (a shared prefix counts once)


def shared_prefix_length(examples: Sequence[TokenizedExample]) -> int:
    """How many leading tokens all the examples share and the loss does not need:
    position i's hidden state predicts token i + 1, so the prefix ends before the
    position that predicts the first trained token."""
    shortest = min(len(example.input_ids) for example in examples)
    first = examples[0].input_ids
    length = 0
    while length < shortest and all(e.input_ids[length] == first[length] for e in examples):
        length += 1
    first_trained = min(
        next(i for i, label in enumerate(example.labels) if label != IGNORE) for example in examples
    )
    return min(length, first_trained - 1)


def token_losses(
    model: Any,
    examples: Sequence[TokenizedExample],
    pad_id: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    *,
    share_prefix: bool = True,
) -> MicroBatchLoss:
    """The summed cross-entropy over the examples' trained tokens under `model` (a peft
    model). `share_prefix` may be False to force one plain pass (gradient checkpointing
    recomputes layers, which would write the KV cache twice)."""
    import torch

    causal = model.get_base_model()
    decoder = causal.get_decoder()
    prefix = shared_prefix_length(examples) if share_prefix and len(examples) > 1 else 0
    if prefix < MIN_SHARED_PREFIX:
        prefix = 0
    rest = [replace(e, input_ids=e.input_ids[prefix:], labels=e.labels[prefix:]) for e in examples]
    device = causal.device  # the model's: a GPU's, where it trains on one
    tensors = collate(rest, pad_id, device)
    labels = tensors["labels"][:, 1:]
    wanted = labels != IGNORE
    with autocast():
        if prefix:
            cache = decoder(
                input_ids=torch.tensor([examples[0].input_ids[:prefix]], device=device),
                use_cache=True,
            ).cache
            cache.batch_repeat_interleave(len(examples))
            seen = torch.ones(
                len(examples), prefix, dtype=tensors["attention_mask"].dtype, device=device
            )
            hidden = decoder(
                input_ids=tensors["input_ids"],
                attention_mask=torch.cat([seen, tensors["attention_mask"]], dim=1),
                cache=cache,
                use_cache=True,
            ).last_hidden_state
        else:
            hidden = decoder(
                input_ids=tensors["input_ids"], attention_mask=tensors["attention_mask"]
            ).last_hidden_state
        logits = causal.get_output_embeddings()(hidden[:, :-1][wanted])
    loss = torch.nn.functional.cross_entropy(logits.float(), labels[wanted], reduction="sum")
    positions = prefix + sum(len(example.input_ids) for example in rest)
    return MicroBatchLoss(loss, int(wanted.sum()), positions)


def loss_module(
    model: Any,
    pad_id: int,
    autocast: Callable[[], AbstractContextManager[Any]],
    *,
    share_prefix: bool = True,
) -> Any:
    """`model` (a peft model) inside a module whose forward is `token_losses` over a list of
    examples: the call a distributed wrapper has to see to synchronise the gradients."""
    import torch

    class LossModule(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, examples: Sequence[TokenizedExample]) -> MicroBatchLoss:
            return token_losses(self.model, examples, pad_id, autocast, share_prefix=share_prefix)

    return LossModule()
