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


# What an answer must not make up: e-mail addresses, URLs, phone numbers and numbers
# (amounts, percentages, durations, dates, counts), each matched whole.
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"(?:https?://|www\.)[^\s<>()\[\]\"']+")
_PHONE = re.compile(r"(?<![\w.])\+?\d{1,3}(?:[ .-]\d{2,4}){2,4}(?![\w])")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
# "1." or "2)" opening a line: a list's numbering, not a figure.
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)


def figures(text: str) -> set[str]:
    """The figures in `text`, normalised so that "$1,250.00" and "1250" match: e-mail
    addresses and URLs lower-cased, phone numbers as their digits, numbers without
    thousands separators and trailing zero decimals."""
    found: set[str] = set()
    text = _LIST_MARKER.sub("", text)
    for pattern in (_EMAIL, _URL):
        found.update(match.rstrip(".,;:").lower() for match in pattern.findall(text))
        text = pattern.sub(" ", text)
    for match in _PHONE.findall(text):
        found.add(re.sub(r"\D", "", match))
    text = _PHONE.sub(" ", text)
    found.update(_number(match) for match in _NUMBER.findall(text))
    return found


def invented_figures(answer: str, given: str) -> list[str]:
    """The figures of `answer` that appear nowhere in `given` (its sources and the
    question), sorted."""
    known = figures(given)
    return sorted(figure for figure in figures(answer) if figure not in known)


def missing_facts(answer: str, facts: Sequence[str]) -> list[str]:
    """The facts (strings the answer must state) that `answer` lacks: compared without
    case, spacing or thousands separators, and a fact that is a figure matches that
    figure however it is written ("$45", "45.00")."""
    text = _plain(answer)
    answer_figures = figures(answer)
    missing = []
    for fact in facts:
        as_figures = figures(fact)
        if as_figures and _plain(fact).strip("$€£%") in {_plain(f) for f in as_figures}:
            if not as_figures <= answer_figures:
                missing.append(fact)
        elif _plain(fact) not in text:
            missing.append(fact)
    return missing


def is_handover(answer: str, handover: str) -> bool:
    """Whether `answer` hands the customer over: it holds the hand-over message, or
    every contact detail (e-mail, phone, URL) the message gives."""
    if _plain(handover) in _plain(answer):
        return True
    contacts = {f for f in figures(handover) if not f.replace(".", "").isdigit() or len(f) >= 7}
    return bool(contacts) and contacts <= figures(answer)


def _number(text: str) -> str:
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", text):
        text = text.replace(",", "")
    if "." in text and re.fullmatch(r"\d+\.\d+", text):
        text = text.rstrip("0").rstrip(".")
    return text


def _plain(text: str) -> str:
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text.lower())
    return " ".join(text.replace("–", "-").replace("—", "-").split())
