"""Sampling a request's next token: draws follow the distribution, nucleus (top-p)
sampling draws only from the smallest set of tokens reaching top_p, and a seed gives
the same draws."""

from __future__ import annotations

import collections

import torch

from hybrid import GenerationSettings
from server.sampling import TokenSampler


def draws(probabilities: list[float], count: int, **settings: float) -> collections.Counter:
    sampler = TokenSampler(
        GenerationSettings(temperature=1.0, repetition_penalty=1.0, **settings), frozenset()
    )
    logits = torch.tensor(probabilities).log()
    return collections.Counter(sampler.next_token(logits, []) for _ in range(count))


def test_draws_follow_the_distribution() -> None:
    counts = draws([0.1, 0.2, 0.3, 0.4], 20_000)
    for token, share in enumerate([0.1, 0.2, 0.3, 0.4]):
        assert abs(counts[token] / 20_000 - share) < 0.015


def test_top_p_keeps_the_smallest_set_that_reaches_it() -> None:
    peaked = [0.5, 0.3] + [0.2 / 998] * 998
    counts = draws(peaked, 4_000, top_p=0.75)
    assert set(counts) == {0, 1}
    assert abs(counts[0] / 4_000 - 0.5 / 0.8) < 0.03


def test_top_p_over_a_flat_distribution_reaches_past_the_first_candidates() -> None:
    flat = [1 / 1000] * 1000  # half the vocabulary is the nucleus: 500 tokens, not 256
    counts = draws(flat, 6_000, top_p=0.5)
    assert 300 < len(counts) <= 501


def test_a_seed_gives_the_same_draws() -> None:
    assert draws([0.25] * 4, 50, seed=7) == draws([0.25] * 4, 50, seed=7)
