"""Training examples as token ids and labels, rendered with the base model's own chat
template, with the loss on the assistant's tokens only.

Each trained assistant turn is located by rendering the conversation up to it twice:
with the generation prompt (where the answer starts: byte-identical to the prompt the
server sends) and including the turn (where it ends, its end-of-turn token included, so
the model learns to stop). Tokens inside that span are labelled; all others get -100.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hybrid.errors import InvalidInputError
from training.chat import render_chat
from training.datasets import Example

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE = -100  # the label PyTorch's cross-entropy skips


@dataclass(frozen=True)
class TokenizedExample:
    input_ids: list[int]
    labels: list[int]
    line: int

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


class RenderError(InvalidInputError):
    code = "invalid_training_example"


def tokenize_example(
    tokenizer: PreTrainedTokenizerBase, example: Example, max_seq_length: int | None = None
) -> TokenizedExample:
    """`example` as the model trains on it, cut to `max_seq_length` tokens. Raises
    RenderError when nothing trainable is left."""
    text = render_chat(tokenizer, example.messages, add_generation_prompt=False)
    spans = _trained_spans(tokenizer, example, text)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoded["input_ids"])
    labels = [
        token if any(start <= begin and end <= stop for start, stop in spans) else IGNORE
        for token, (begin, end) in zip(input_ids, encoded["offset_mapping"], strict=True)
    ]
    if max_seq_length is not None:
        input_ids, labels = input_ids[:max_seq_length], labels[:max_seq_length]
    tokenized = TokenizedExample(input_ids, labels, example.line)
    if tokenized.trained_tokens == 0:
        reason = (
            f"longer than max_seq_length = {max_seq_length} before its first answer"
            if max_seq_length is not None and len(encoded["input_ids"]) > max_seq_length
            else "no assistant token to train"
        )
        raise RenderError(f"line {example.line}: {reason}", hint="run `hybrid data lint` on it")
    return tokenized


def _trained_spans(
    tokenizer: PreTrainedTokenizerBase, example: Example, text: str
) -> list[tuple[int, int]]:
    """Character spans of the trained assistant turns within `text`."""
    spans = []
    for index, (message, trained) in enumerate(zip(example.messages, example.trained, strict=True)):
        if message.role != "assistant" or not trained:
            continue
        before = render_chat(tokenizer, example.messages[:index], add_generation_prompt=True)
        through = render_chat(tokenizer, example.messages[: index + 1], add_generation_prompt=False)
        if not (text.startswith(before) and text.startswith(through.rstrip())):
            raise RenderError(
                f"line {example.line}: the model's chat template renders the start of this "
                "conversation differently from the whole, so its answers cannot be located",
                hint="use a base model whose chat template renders turns independently",
            )
        spans.append((len(before), len(through.rstrip())))
    return spans
