"""The assistant: retrieve -> build the prompt within the context budget -> generate with
the chosen adapter -> cite -> log. Plain Python with no web imports; `hybrid ask` and
the HTTP server both answer through it.

A conversation's last user turn is the question: it is what the retriever searches for
and it is never cut. The bot's own system prompt leads every prompt (it is the one its
adapters were trained with), so a client's system messages are left out. When the prompt
would leave no room for a full-length answer, the lowest-ranked sources go first, then
the oldest turns of the conversation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from hybrid.config import DEFAULT_HANDOVER, GenerationSettings
from hybrid.errors import HybridError, InvalidInputError
from hybrid.prompt import build_messages, grounding_text
from hybrid.protocols import GenerationRequest, GenerationStream, Generator, Retriever
from hybrid.types import AdapterRef, Generation, Hit, Message
from server.interactions import Interaction, InteractionLog
from server.streams import DeltaStream, finished_stream
from training.evaluation import invented_figures


class TokenBudget(Protocol):
    """How much prompt fits: the model's context and a prompt's tokens (rendered with the
    chat template). `longest_token_chars` (the longest token's length in characters)
    bounds from below the tokens a text takes, so a text far too long is refused without
    tokenizing it."""

    context_window: int
    longest_token_chars: int

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]: ...


@dataclass(frozen=True)
class Prompt:
    question: str
    messages: list[Message]  # what the model is given
    citations: list[Hit]  # the sources in it, best first
    conversation: list[Message]  # what the client sent
    handover: bool = False  # nothing relevant was found: the answer is the hand-over
    # `messages` rendered and tokenized, when the assistant has a TokenBudget.
    token_ids: list[int] | None = None

    @property
    def grounding(self) -> str:
        """The text an answer's figures must come from: the question and its sources."""
        return grounding_text(self.question, self.citations)


@dataclass(frozen=True)
class Answer:
    id: str
    question: str
    text: str
    citations: list[Hit]
    adapter: AdapterRef | None
    generation: Generation
    seconds: float
    # Figures of the answer found in neither its sources nor the question, when nothing
    # kept them out (generation.grounded_figures off, no sources, another generator).
    ungrounded_figures: list[str]


class Assistant:
    def __init__(
        self,
        generator: Generator,
        *,
        system_prompt: str,
        settings: GenerationSettings,
        retriever: Retriever | None = None,
        top_k: int = 3,
        budget: TokenBudget | None = None,
        log: InteractionLog | None = None,
        handover: str = DEFAULT_HANDOVER,
        handover_below: float = 0.0,
    ) -> None:
        self.generator = generator
        # When retrieval finds nothing closer than `handover_below`, the answer is the
        # hand-over, given without the model (which would guess).
        self.handover = handover
        self.handover_below = handover_below
        self.system_prompt = system_prompt
        self.settings = settings
        self.retriever = retriever
        self.top_k = top_k
        self.budget = budget
        self.log = log

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the generator's worker, if it has one (the engine does)."""
        close = getattr(self.generator, "close", None)
        if close is not None:
            close()

    def prepare(
        self, conversation: str | Sequence[Message], settings: GenerationSettings | None = None
    ) -> Prompt:
        """Retrieve for the last user turn and build the prompt that fits."""
        turns = (
            [Message("user", conversation)] if isinstance(conversation, str) else list(conversation)
        )
        if not turns or turns[-1].role != "user":
            raise InvalidInputError(
                "the conversation must end with a user message", param="messages"
            )
        question = turns[-1].content.strip()
        if not question:
            raise InvalidInputError("the question is empty", param="messages")
        room = (settings or self.settings).max_new_tokens
        if self._nothing_relevant(question):
            return Prompt(question, [], [], turns, handover=True)
        history = [turn for turn in turns[:-1] if turn.role != "system"]
        if self.budget is not None:
            history = _within_reach(question, history, self.budget, room)
        sources = self.retriever.sources(question, self.top_k) if self.retriever else []

        tokenized: dict[tuple[int, int], list[int]] = {}  # each prompt tried, tokenized once

        def build(kept_sources: int, first_turn: int) -> list[Message]:
            return build_messages(
                self.system_prompt, question, sources[:kept_sources], history[first_turn:]
            )

        def token_ids(kept_sources: int, first_turn: int) -> list[int] | None:
            if self.budget is None:
                return None
            key = (kept_sources, first_turn)
            if key not in tokenized:
                tokenized[key] = self.budget.prompt_ids(build(kept_sources, first_turn))
            return tokenized[key]

        def fits(kept_sources: int, first_turn: int) -> bool:
            if self.budget is None:
                return True
            ids = token_ids(kept_sources, first_turn) or []
            return len(ids) + room <= self.budget.context_window

        # The lowest-ranked sources go first, then the oldest turns; never the question.
        # Each search tries O(log n) prompts, not one per dropped source or turn.
        dropped = _fewest_to_drop(len(sources), lambda n: fits(len(sources) - n, 0))
        kept, first_turn = len(sources) - dropped, 0
        if kept == 0:
            first_turn = _fewest_to_drop(len(history), lambda n: fits(0, n))
        return Prompt(
            question,
            build(kept, first_turn),
            sources[:kept],
            turns,
            token_ids=token_ids(kept, first_turn),
        )

    def answer(
        self,
        conversation: str | Sequence[Message],
        *,
        adapter: AdapterRef | None = None,
        settings: GenerationSettings | None = None,
    ) -> Answer:
        """The whole answer to the conversation's last user turn, logged."""
        prompt = self.prepare(conversation, settings)
        stream = self.stream(prompt, adapter=adapter, settings=settings)
        try:
            for _ in stream:
                pass
        finally:
            stream.cancel()  # a no-op once finished
        assert stream.answer is not None
        return stream.answer

    def stream(
        self,
        prompt: Prompt,
        *,
        adapter: AdapterRef | None = None,
        settings: GenerationSettings | None = None,
        stop: Sequence[str] = (),
        timeout: float | None = None,
    ) -> AnswerStream:
        """The answer to a prompt from prepare(), as it is generated; logged at its end."""
        started = time.perf_counter()
        settings = settings or self.settings
        if prompt.handover:
            tokens: GenerationStream = finished_stream(self.handover)
            return AnswerStream(self, _new_id(), prompt, None, tokens, started)
        request = GenerationRequest(
            prompt.messages,
            settings,
            adapter,
            prompt_ids=prompt.token_ids,
            stop=tuple(stop),
            timeout=timeout,
            grounding=prompt.grounding if prompt.citations else None,
        )
        # Refused before generating (an unknown adapter, a full queue): nothing to log.
        tokens = self.generator.stream(request)
        return AnswerStream(self, _new_id(), prompt, adapter, tokens, started)

    def _nothing_relevant(self, question: str) -> bool:
        if self.retriever is None or self.handover_below <= 0:
            return False
        return self.retriever.relevance(question) < self.handover_below

    def _finish(
        self,
        answer_id: str,
        prompt: Prompt,
        generation: Generation,
        started: float,
    ) -> Answer:
        answer = Answer(
            id=answer_id,
            question=prompt.question,
            text=generation.text,
            citations=prompt.citations,
            adapter=generation.adapter,
            generation=generation,
            seconds=time.perf_counter() - started,
            # The hand-over is the bot's own text; the local engine kept to the sources.
            ungrounded_figures=[]
            if prompt.handover or generation.figures_grounded
            else invented_figures(generation.text, prompt.grounding),
        )
        self._log(
            answer_id,
            prompt,
            answer.adapter,
            started,
            generation=generation,
            ungrounded=answer.ungrounded_figures,
        )
        return answer

    def _log(
        self,
        answer_id: str,
        prompt: Prompt,
        adapter: AdapterRef | None,
        started: float,
        *,
        generation: Generation | None = None,
        error: BaseException | None = None,
        ungrounded: Sequence[str] = (),
    ) -> None:
        """Record an answer (or the error that ended it) in the interaction log."""
        if self.log is None:
            return
        self.log.record(
            Interaction(
                id=answer_id,
                question=prompt.question,
                messages=prompt.conversation,
                sources=prompt.citations,
                adapter=adapter,
                answer=generation.text if generation else "",
                finish_reason=generation.finish_reason if generation else None,
                prompt_tokens=generation.prompt_tokens if generation else None,
                completion_tokens=generation.completion_tokens if generation else None,
                seconds=time.perf_counter() - started,
                error=str(error) if error else None,
                ungrounded_figures=tuple(ungrounded),
                index_version=self.retriever.version() if self.retriever else None,
            )
        )


class AnswerStream(DeltaStream):
    """Iterate for the answer's text as it is generated; `answer` is set (and logged)
    once the iteration ends. `cancel()` stops the generation at its next step."""

    def __init__(
        self,
        assistant: Assistant,
        answer_id: str,
        prompt: Prompt,
        adapter: AdapterRef | None,
        tokens: GenerationStream,
        started: float,
    ) -> None:
        self.id = answer_id
        self.prompt = prompt
        self.answer: Answer | None = None
        self._assistant = assistant
        self._adapter = adapter
        self._tokens = tokens
        self._started = started

    def next_delta(self, timeout: float | None = None) -> str | None:
        """The next piece of text, or None at the end (then `answer` is set)."""
        try:
            return self._settle(self._tokens.next_delta(timeout))
        except HybridError as exc:
            self._fail(exc)
            raise

    def ready(self) -> bool:
        return self._tokens.ready()

    def _settle(self, delta: str | None) -> str | None:
        if delta is None and self.answer is None:
            assert self._tokens.result is not None
            self.answer = self._assistant._finish(
                self.id, self.prompt, self._tokens.result, self._started
            )
        return delta

    def _fail(self, error: HybridError) -> None:
        self._assistant._log(self.id, self.prompt, self._adapter, self._started, error=error)

    def cancel(self) -> None:
        self._tokens.cancel()


def _within_reach(
    question: str, history: list[Message], budget: TokenBudget, room: int
) -> list[Message]:
    """Refuse a question that cannot fit whatever is dropped, and drop the oldest turns
    that cannot fit even beside it, by counting characters only: a token covers at most
    `longest_token_chars` of them, so this holds without tokenizing anything."""
    reach = (budget.context_window - room) * budget.longest_token_chars
    if len(question) > reach:
        raise InvalidInputError(
            f"the question is {len(question):,} characters, more than the model's context "
            f"of {budget.context_window} tokens can hold",
            hint="ask a shorter question",
            param="messages",
        )
    kept, chars = len(history), len(question)
    while kept and chars + len(history[kept - 1].content) <= reach:
        kept -= 1
        chars += len(history[kept].content)
    return history[kept:]


def _fewest_to_drop(count: int, fits_after_dropping: Callable[[int], bool]) -> int:
    """The fewest of `count` items to drop for the prompt to fit (`count` if nothing
    does), by bisection: dropping more never makes a prompt longer."""
    low, high = 0, count
    while low < high:
        middle = (low + high) // 2
        if fits_after_dropping(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"
