"""Loss masks: the labels, decoded, are exactly the assistant's answers and their
end-of-turn tokens; the prompt before an answer is byte-identical to a serving prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from hybrid.types import Message
from training import Example, RenderError, load_tokenizer, render_chat, tokenize_example
from training.rendering import IGNORE


def example(*turns: tuple[str, str], trained: tuple[bool, ...] | None = None) -> Example:
    messages = tuple(Message(role, content) for role, content in turns)  # type: ignore[arg-type]
    if trained is None:
        trained = tuple(m.role == "assistant" for m in messages)
    return Example(messages, trained, line=7, format="openai")


def trained_text(tokenizer, tokenized) -> list[str]:
    """The labelled tokens decoded, one string per contiguous run."""
    runs, current = [], []
    for token, label in zip(tokenized.input_ids, tokenized.labels, strict=True):
        if label == IGNORE:
            if current:
                runs.append(tokenizer.decode(current))
                current = []
        else:
            assert label == token
            current.append(token)
    if current:
        runs.append(tokenizer.decode(current))
    return runs


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return load_tokenizer(str(tiny_model_dir), base_dir=tiny_model_dir, models_dir=tiny_model_dir)


CONVERSATION = (
    ("system", "You are Kestrel's support assistant."),
    ("user", "How long is the return window?"),
    ("assistant", "Hi there! 45 days from delivery."),
    ("user", "And for members?"),
    ("assistant", "Summit members get 60 days."),
)


def test_only_assistant_turns_and_their_end_of_turn_are_trained(tokenizer) -> None:
    tokenized = tokenize_example(tokenizer, example(*CONVERSATION))
    assert trained_text(tokenizer, tokenized) == [
        "Hi there! 45 days from delivery.<|im_end|>",
        "Summit members get 60 days.<|im_end|>",
    ]
    assert tokenized.labels[0] == IGNORE and tokenized.line == 7


def test_a_turn_with_weight_0_is_context_not_a_target(tokenizer) -> None:
    tokenized = tokenize_example(
        tokenizer, example(*CONVERSATION, trained=(False, False, False, False, True))
    )
    assert trained_text(tokenizer, tokenized) == ["Summit members get 60 days.<|im_end|>"]


def test_the_prompt_before_an_answer_is_the_serving_prompt(tokenizer) -> None:
    conversation = example(*CONVERSATION[:3])
    tokenized = tokenize_example(tokenizer, conversation)
    first_label = next(i for i, label in enumerate(tokenized.labels) if label != IGNORE)
    serving = render_chat(tokenizer, conversation.messages[:2], add_generation_prompt=True)
    assert tokenizer.decode(tokenized.input_ids[:first_label]) == serving
    assert (
        tokenized.input_ids[:first_label] == tokenizer(serving, add_special_tokens=False).input_ids
    )


def test_truncation_that_leaves_nothing_to_train_is_an_error(tokenizer) -> None:
    conversation = example(("user", "word " * 200), ("assistant", "Short answer."))
    with pytest.raises(RenderError, match=r"line 7: longer than max_seq_length = 32"):
        tokenize_example(tokenizer, conversation, max_seq_length=32)
    full = tokenize_example(tokenizer, example(*CONVERSATION))
    limit = len(full.input_ids) - 5
    cut = tokenize_example(tokenizer, example(*CONVERSATION), max_seq_length=limit)
    assert len(cut.input_ids) == limit and 0 < cut.trained_tokens < full.trained_tokens


@pytest.mark.slow
def test_the_real_base_models_template_masks_the_same_way(real_bot) -> None:
    tokenizer = load_tokenizer(
        real_bot.config.models.base, base_dir=real_bot.root, models_dir=real_bot.models_dir
    )
    for turns in (CONVERSATION, CONVERSATION[1:]):  # with and without a system prompt
        tokenized = tokenize_example(tokenizer, example(*turns))
        assert trained_text(tokenizer, tokenized) == [
            "Hi there! 45 days from delivery.<|im_end|>",
            "Summit members get 60 days.<|im_end|>",
        ]
