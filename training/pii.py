"""Personal data in training text: e-mail addresses, phone numbers and payment card
numbers (Luhn-checked, so order numbers and dates are not mistaken for cards)."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{7,}\d(?!\w)")
PLACEHOLDERS = {"email": "[EMAIL]", "phone": "[PHONE]", "card": "[CARD_NUMBER]"}


@dataclass(frozen=True)
class Finding:
    kind: str  # "email", "phone" or "card"
    text: str
    start: int
    end: int

    @property
    def masked(self) -> str:
        """Enough to find it in the file, not enough to leak it again in a report."""
        visible = self.text[:2] if self.kind == "email" else self.text[-2:]
        return f"{visible}…" if self.kind == "email" else f"…{visible}"


def find_pii(text: str, allowed: Collection[str] = ()) -> list[Finding]:
    """Personal data in `text`, in order; values in `allowed` (a company's own public
    address or phone number) are not reported."""
    found: list[Finding] = []
    taken: list[range] = []
    for kind, pattern in (("email", _EMAIL), ("card", _CARD), ("phone", _PHONE)):
        for match in pattern.finditer(text):
            span = range(match.start(), match.end())
            value = match.group().strip()
            if any(span.start < other.stop and other.start < span.stop for other in taken):
                continue  # a card number is not also a phone number
            if value in allowed or not _plausible(kind, value):
                continue
            found.append(Finding(kind, value, match.start(), match.start() + len(value)))
            taken.append(span)
    return sorted(found, key=lambda finding: finding.start)


def redact(text: str, allowed: Collection[str] = ()) -> str:
    for finding in reversed(find_pii(text, allowed)):
        text = text[: finding.start] + PLACEHOLDERS[finding.kind] + text[finding.end :]
    return text


def _plausible(kind: str, value: str) -> bool:
    digits = re.sub(r"\D", "", value)
    if kind == "card":
        return _luhn(digits)
    if kind == "phone":
        return 10 <= len(digits) <= 15
    return True


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0
