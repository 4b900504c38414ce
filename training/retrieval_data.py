"""Retrieval-aware training data (`hybrid train --with-retrieval`): each example's last
question gets the sources the retriever finds for it, built by the very function the
server builds its prompts with (hybrid.prompt.build_messages). The adapter then learns to
answer from and cite the context it will be given when served.

training/ never imports indexes/: the retriever arrives through hybrid's Retriever
protocol.
"""

from __future__ import annotations

from dataclasses import replace

from hybrid.prompt import build_messages
from hybrid.protocols import Retriever
from training.datasets import Example


def with_retrieval(
    example: Example, retriever: Retriever, *, system_prompt: str, top_k: int
) -> Example:
    """`example` with its system turn and last question replaced by the serving prompt
    for that question: the bot's system prompt (or the example's own) plus the sources
    rules, and the question after its retrieved sources. Earlier turns stay as they are."""
    messages = list(example.messages)
    last_user = max(i for i, message in enumerate(messages) if message.role == "user")
    system = messages[0].content if messages[0].role == "system" else system_prompt
    question = messages[last_user].content
    new_system, new_user = build_messages(system, question, retriever.sources(question, top_k))
    start = 1 if messages[0].role == "system" else 0
    rebuilt = [new_system, *messages[start:last_user], new_user, *messages[last_user + 1 :]]
    trained = list(example.trained)
    trained = [False, *trained[start:last_user], False, *trained[last_user + 1 :]]
    return replace(example, messages=tuple(rebuilt), trained=tuple(trained))
