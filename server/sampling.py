"""Choosing each request's next token from its row of the batch's logits.

Per request, so that requests with different settings share a batch: a repetition
penalty on the answer's own words, then greedy decoding (temperature 0) or temperature
and nucleus (top-p) sampling from the request's own seeded generator, so that a seed
gives the same answer whatever else is in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hybrid.config import GenerationSettings

GREEDY_BELOW = 1e-4  # temperatures under this decode greedily
REDRAWS = 16  # refused tokens taken out before the rest are tried in order

if TYPE_CHECKING:
    import torch


class TokenSampler:
    def __init__(self, settings: GenerationSettings, exempt_ids: frozenset[int]) -> None:
        import torch

        self.settings = settings
        # Line breaks and spaces are never penalised: an answer whose format puts a
        # sign-off on its own last line would stop before it (measured: a trained adapter
        # kept its sign-off on 2 of 12 sample questions at 1.1, 9 of 12 sparing them).
        self.exempt_ids = exempt_ids
        self.generator = torch.Generator().manual_seed(settings.seed)

    def next_token(
        self,
        logits: torch.Tensor,
        answer_ids: list[int],
        accept: Callable[[int], bool] | None = None,
    ) -> int:
        """`logits`: this request's row (vocabulary,), float32; `answer_ids`: the tokens
        it has generated so far. The prompt's tokens are not penalised: those are the
        sources' words, which the answer should quote. `accept`: whether a token may be
        written (server/grounding.py); the choice is made among those it accepts."""
        token = self._choose(logits, answer_ids)
        if accept is None or accept(token):
            return token
        return self._best_accepted(logits, answer_ids, accept)

    def _best_accepted(
        self, logits: torch.Tensor, answer_ids: list[int], accept: Callable[[int], bool]
    ) -> int:
        """The most likely accepted token (greedy), or a draw among accepted ones: refused
        tokens are taken out one at a time, since a refusal is rare and the accepted
        token is nearly always among the next few."""
        logits = logits.clone()
        for _ in range(REDRAWS):
            logits[self._choose(logits, answer_ids)] = float("-inf")
            token = self._choose(logits, answer_ids)
            if accept(token):
                return token
        for token in logits.argsort(descending=True).tolist():
            if accept(token):
                return token
        raise AssertionError("no token is accepted")  # the end-of-turn token always is

    def _choose(self, logits: torch.Tensor, answer_ids: list[int]) -> int:
        import torch

        settings = self.settings
        if settings.repetition_penalty != 1.0 and answer_ids:
            logits = logits.clone()
            used = torch.tensor(sorted(set(answer_ids) - self.exempt_ids), dtype=torch.long)
            scores = logits[used]
            logits[used] = torch.where(
                scores > 0,
                scores / settings.repetition_penalty,
                scores * settings.repetition_penalty,
            )
        # Sampling tends to greedy as the temperature falls; below this, dividing the
        # logits by it would overflow float32 and the draw would be noise.
        if settings.temperature < GREEDY_BELOW:
            return int(logits.argmax())
        probabilities = torch.softmax(logits / settings.temperature, dim=-1)
        if settings.top_p < 1.0:
            probabilities = _nucleus(probabilities, settings.top_p)
        # Inverse transform: one uniform draw per token. torch.multinomial draws one
        # exponential per vocabulary entry (49k here), ~1 ms of every row's step.
        cumulative = probabilities.cumsum(0)
        draw = torch.rand((), generator=self.generator) * cumulative[-1]
        return min(int(torch.searchsorted(cumulative, draw, right=True)), len(cumulative) - 1)


def _nucleus(probabilities: torch.Tensor, top_p: float, candidates: int = 256) -> torch.Tensor:
    """Only the smallest set of most likely tokens whose probability reaches `top_p`.
    Sorting the whole vocabulary takes ~3 ms a token; the few hundred most likely
    tokens nearly always hold that mass, so they are tried first (same result)."""
    import torch

    ordered, order = probabilities.topk(min(candidates, len(probabilities)))
    if ordered.sum() < top_p:
        ordered, order = probabilities.sort(descending=True)
    outside = ordered.cumsum(0) - ordered >= top_p
    ordered[outside] = 0.0
    return torch.zeros_like(probabilities).scatter(0, order, ordered)


def whitespace_token_ids(tokenizer) -> frozenset[int]:
    """The vocabulary's tokens that are only spaces and line breaks."""
    return frozenset(
        token_id
        for token, token_id in tokenizer.get_vocab().items()
        if tokenizer.convert_tokens_to_string([token]).isspace()
    )
