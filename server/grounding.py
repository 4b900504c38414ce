"""What an answer may write, checked token by token as it is generated.

- Figures only from the sources: once a request has sources, every number the answer
  writes must be one that appears in those sources or in the question. A number is
  checked digit by digit as it grows (SmolLM2 writes numbers a digit per token): its
  digits so far must begin some figure of the sources, and it may end only where that
  figure ends. Thousands separators are ignored ("$1,250.00" is 1250.00, or 1250) and
  a decimal point must be where the figure has one, so "19.95" does not allow 1995 or
  1.995; a sources' "1-800-555-0142" allows 1, 800, 555 and 0142. A numbered list's next item
  number ("1." opening a line, then "2.", or "2)") is always allowed.
- Never the prompt's markup: an answer cannot write `<source`, `</source` or
  `<script`, which small models otherwise copy from the prompt.
"""

from __future__ import annotations

import re

MARKUP = ("<source", "</source", "<script")
_MARKUP_TAIL = max(map(len, MARKUP))
_FIGURE = re.compile(r"\d(?:[\d,.]*\d)?")
_OPEN_NUMBER = re.compile(r"\d(?:[\d,]|\.(?=\d|$))*$")
_LIST_ITEM = re.compile(r"^\s*(\d{1,2})[.)]\s", re.MULTILINE)


def grounded_figures(text: str) -> frozenset[str]:
    """The numbers an answer may write, given the text of its sources and question:
    each without thousands separators ("1,250.00" is 1250.00), also without zero
    decimals (1250)."""
    found: set[str] = set()
    for figure in _FIGURE.findall(text):
        number = figure.replace(",", "").rstrip(".")
        found.add(number)
        if "." in number:
            found.add(number.rstrip("0").rstrip("."))
    return frozenset(found)


class AnswerGuard:
    """`allows(text, addition)`: whether an answer that reads `text` so far may go on
    with `addition` (one token's text). `figures` None: any number may be written."""

    def __init__(self, figures: frozenset[str] | None, grounding: str = "") -> None:
        self.checks_figures = figures is not None
        self._complete = figures or frozenset()
        # Links and e-mail addresses cannot be made up either: with figures checked, an
        # answer whose sources hold none cannot start one.
        lowered = grounding.lower()
        unsourced = [mark for mark in ("://", "www.", "@") if mark not in lowered]
        self._banned = MARKUP + tuple(unsourced if figures is not None else ())
        self._prefixes = (
            None if figures is None else {f[:end] for f in figures for end in range(1, len(f) + 1)}
        )

    def allows(self, text: str, addition: str) -> bool:
        return self._no_markup(text, addition) and self._figures_allowed(text, addition)

    def _no_markup(self, text: str, addition: str) -> bool:
        tail = text[-_MARKUP_TAIL:].lower()
        joined = tail + addition.lower()
        return not any(tag in joined and tag not in tail for tag in self._banned)

    def _figures_allowed(self, text: str, addition: str) -> bool:
        if self._prefixes is None:
            return True
        open_number = _OPEN_NUMBER.search(text[-64:])
        if open_number is None and not any(char.isdigit() for char in addition):
            return True
        # The number being written, without thousands separators: "19.9" or "45.".
        number = open_number.group().replace(",", "") if open_number else ""
        start = len(text) - len(open_number.group()) if open_number else len(text)
        for char in addition:
            if char.isdigit():
                if not number:
                    start = len(text)
                number += char
                if number not in self._prefixes and not self._numbering(text[:start], number):
                    return False
            elif number and char == ",":
                # A thousands separator where a figure goes on in groups of three, else
                # punctuation after a whole figure.
                if text[-1] in ",.":
                    return False
                if not self._thousands_follow(number):
                    if number.rstrip(".") not in self._complete:
                        return False
                    number = ""
            elif number and char == "." and text[-1] != "." and number + "." in self._prefixes:
                number += "."  # a decimal point, or the sentence's end: the next character says
            elif number:
                ended = number.rstrip(".")  # a point not followed by a digit ends the sentence
                marked = (char == ")" and text[-1].isdigit()) or (
                    (char == "." or text[-1] == ".") and text[-2:-1].isdigit()
                )
                if ended not in self._complete and not (
                    marked and self._numbering(text[:start], ended)
                ):
                    return False
                number = ""
            text += char
        return True

    def _thousands_follow(self, number: str) -> bool:
        return any(
            figure.startswith(number)
            and (rest := len(figure.split(".")[0]) - len(number)) > 0
            and rest % 3 == 0
            for figure in self._complete
        )

    @staticmethod
    def _numbering(before: str, digits: str) -> bool:
        """Whether `digits` after `before` can be a numbered list's next item number."""
        return _starts_line(before) and digits == _next_item(before)


def _next_item(text: str) -> str:
    """The number the next item of a numbered list in `text` would have: 1 first."""
    items = _LIST_ITEM.findall(text)
    return str(int(items[-1]) + 1) if items else "1"


def _starts_line(before: str) -> bool:
    """Whether a number after `before` opens a line (nothing but spaces before it)."""
    return before[before.rfind("\n") + 1 :].strip() == ""
