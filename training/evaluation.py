"""Scoring answers against a golden set: format adherence (the bot's answer-format
rules, checked by code) and ROUGE-L against the reference answers."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hybrid.config import EvaluationSettings

_WORD = re.compile(r"\w+(?:['’.,-]\w+)*")


def format_problems(answer: str, rules: EvaluationSettings) -> list[str]:
    """The format rules `answer` breaks (empty when it follows them all)."""
    problems = [
        f"does not match {pattern!r}"
        for pattern in rules.format_patterns
        if not re.search(pattern, answer.strip())
    ]
    words = len(_WORD.findall(answer))
    if rules.max_words and words > rules.max_words:
        problems.append(f"{words} words, more than {rules.max_words}")
    return problems


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1: the longest common subsequence of lower-cased words, as a share of
    both texts (Lin, 2004; beta = 1)."""
    a, b = _words(candidate), _words(reference)
    if not a or not b:
        return 0.0
    common = _lcs_length(a, b)
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def _words(text: str) -> list[str]:
    return [word.lower() for word in _WORD.findall(text)]


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for word in a:
        current = [0]
        for j, other in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if word == other else max(previous[j], current[-1]))
        previous = current
    return previous[-1]
