"""Rendering conversations with the base model's chat template: the same function for
training examples and for serving prompts, so the two can never drift apart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hybrid.types import Message

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Used for models that ship without a chat template (plain base models).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def render_chat(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[Message],
    *,
    add_generation_prompt: bool,
) -> str:
    """The conversation as the model sees it; with `add_generation_prompt` it ends where
    the assistant's reply begins."""
    return tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages],
        chat_template=tokenizer.chat_template or CHATML_TEMPLATE,
        tokenize=False,
        add_generation_prompt=add_generation_prompt,
    )
