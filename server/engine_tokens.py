"""The base model's tokenizer as the generation engine uses it: a conversation to its
prompt's token ids (and how many of them every request of a bot shares), and token ids
back to text."""

from __future__ import annotations

from collections.abc import Sequence

from hybrid.errors import InvalidInputError
from hybrid.protocols import GenerationRequest
from hybrid.types import Message
from training import render_chat


class EngineTokens:
    def __init__(self, tokenizer) -> None:  # a transformers tokenizer
        self.tokenizer = tokenizer
        # The longest token in characters: a text of n characters takes at least
        # n / longest_token_chars tokens (see Assistant's TokenBudget).
        self.longest_token_chars = max(map(len, tokenizer.get_vocab()))
        self._texts: dict[int, str] = {}  # read by the decoding thread only
        # A bot has one system prompt: its tokens, rendered once (by content).
        self._system: dict[str, list[int]] = {}

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        return self._ids(messages, add_generation_prompt=True)

    def fitted_prompt(
        self, request: GenerationRequest, context_window: int
    ) -> tuple[list[int], int]:
        """The request's prompt tokens (as given, or rendered now) and the room left for
        the answer; a prompt that leaves none is refused."""
        prompt_ids = list(request.prompt_ids or self.prompt_ids(request.messages))
        room = context_window - len(prompt_ids)
        if room < 1:
            raise InvalidInputError(
                f"the prompt takes {len(prompt_ids)} tokens; the model's context holds "
                f"{context_window}",
                hint="ask a shorter question",
            )
        return prompt_ids, room

    def shared_prefix_length(self, messages: Sequence[Message], prompt_ids: list[int]) -> int:
        """How many leading prompt tokens are the system turn, which every request of a
        bot shares (0 without one, or if it does not tokenize the same on its own)."""
        if len(messages) < 2 or messages[0].role != "system":
            return 0
        system = self._system.get(messages[0].content)
        if system is None:
            if len(self._system) > 16:  # a generator shared by many system prompts
                self._system.clear()
            system = self._ids(messages[:1], add_generation_prompt=False)
            self._system[messages[0].content] = system
        return len(system) if prompt_ids[: len(system)] == system else 0

    def token_text(self, token_id: int) -> str:
        """One token's text, as the answer guard reads a candidate token."""
        text = self._texts.get(token_id)
        if text is None:
            text = self._texts[token_id] = self.tokenizer.decode([token_id])
        return text

    def answer_text(self, answer_ids: list[int]) -> str:
        return self.tokenizer.decode(answer_ids, skip_special_tokens=True).lstrip()

    def _ids(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> list[int]:
        prompt = render_chat(self.tokenizer, messages, add_generation_prompt=add_generation_prompt)
        return self.tokenizer(prompt, add_special_tokens=False).input_ids
