"""What an answer may write, checked token by token as it is generated.

- Figures only from the sources: once a request has sources, every number the answer
  writes must be one that appears in those sources or in the question. A number is
  checked digit by digit as it grows (SmolLM2 writes numbers a digit per token): its
  digits so far must begin some figure of the sources, and it may end only where that
  figure ends. Decimal and thousands separators (`.` and `,` between digits) keep a
  number going, so "$1,250.00" is the figure 125000 and "19.95" the figure 1995; a
  sources' "1-800-555-0142" allows 1, 800, 555 and 0142. A numbered list's next item
  number ("1." opening a line, then "2.", or "2)") is always allowed.
- Never the prompt's markup: an answer cannot write `<source`, `</source` or
  `<script`, which small models otherwise copy from the prompt.
"""

from __future__ import annotations

import re

MARKUP = ("<source", "</source", "<script")
_MARKUP_TAIL = max(map(len, MARKUP))
_FIGURE = re.compile(r"\d(?:[\d,.]*\d)?")
_OPEN_NUMBER = re.compile(r"\d[\d,.]*$")
_LIST_ITEM = re.compile(r"^\s*(\d{1,2})[.)]\s", re.MULTILINE)


def grounded_figures(text: str) -> frozenset[str]:
    """The digit strings an answer may write, given the text of its sources and question:
    each figure without its separators, and each run of digits in it."""
    found: set[str] = set()
    for figure in _FIGURE.findall(text):
        found.add(re.sub(r"\D", "", figure))
        found.update(re.findall(r"\d+", figure))
    return frozenset(found)


class AnswerGuard:
    """`allows(text, addition)`: whether an answer that reads `text` so far may go on
    with `addition` (one token's text). `figures` None: any number may be written."""

    def __init__(self, figures: frozenset[str] | None) -> None:
        self._complete = figures or frozenset()
        self._prefixes = (
            None if figures is None else {f[:end] for f in figures for end in range(1, len(f) + 1)}
        )

    def allows(self, text: str, addition: str) -> bool:
        return self._no_markup(text, addition) and self._figures_allowed(text, addition)

    def _no_markup(self, text: str, addition: str) -> bool:
        tail = text[-_MARKUP_TAIL:].lower()
        joined = tail + addition.lower()
        return not any(tag in joined and tag not in tail for tag in MARKUP)

    def _figures_allowed(self, text: str, addition: str) -> bool:
        if self._prefixes is None:
            return True
        open_number = _OPEN_NUMBER.search(text[-64:])
        if open_number is None and not any(char.isdigit() for char in addition):
            return True
        digits = re.sub(r"\D", "", open_number.group()) if open_number else ""
        start = len(text) - len(open_number.group()) if open_number else len(text)
        for char in addition:
            if char.isdigit():
                if not digits:
                    start = len(text)
                digits += char
                if digits not in self._prefixes and not self._numbering(text[:start], digits):
                    return False
            elif digits and char in ",.":
                # A separator between digits, or the sentence's end: never two in a row,
                # and a list's number ("2.") takes no comma.
                if text[-1] in ",." or (char == "," and digits not in self._prefixes):
                    return False
            elif digits:
                marked = (char == ")" and text[-1].isdigit()) or (
                    text[-1] == "." and text[-2:-1].isdigit()
                )
                if digits not in self._complete and not (
                    marked and self._numbering(text[:start], digits)
                ):
                    return False
                digits = ""
            text += char
        return True

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
