"""Personal data in training text: e-mail addresses, phone numbers and payment card
numbers. Support conversations are full of order, tracking and invoice numbers, so a
run of digits alone is not enough: a phone number must be written like one (`+44 20
7946 0958`, `(415) 555-2671`) or follow a word like "call" or "phone"; a card number
must pass the Luhn check, start like a card network's, and be grouped like a card or
follow a word like "card" or "visa"; and a number right after "order", "tracking",
"invoice" and the like is that, not personal data."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d[\d ().-]{7,}\d(?!\w)")
# How people write phone numbers: an international +, or area code, exchange and line
# apart (North American style), or three or more groups of digits.
_PHONE_FORMAT = re.compile(r"\+\d.*|\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}|\d+(?:[ .-]\d+){2,}", re.ASCII)
_CARD_FORMAT = re.compile(r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5}")
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5)|35|30|36|38")  # networks' IINs
# Words that say what the number after them is, in the few words before it.
_CONTEXT_CHARS = 40
_PHONE_WORDS = re.compile(
    r"\b(?:phone|call|tel|telephone|mobile|cell|sms|text me|whatsapp|fax|reach me|contact)\b"
)
_CARD_WORDS = re.compile(
    r"\b(?:card|visa|master ?card|amex|american express|discover|credit|debit|cc)\b"
)
_REFERENCE_WORDS = re.compile(
    r"\b(?:order|tracking|invoice|receipt|ticket|case|ref|reference|sku|serial|model|"
    r"account|item|parcel|shipment|confirmation|rma|po)\b\W*(?:(?:no|num|number|id|code)\b\W*)?"
    r"(?:is\W*)?#?\W*$"
)
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
            before = text[max(0, match.start() - _CONTEXT_CHARS) : match.start()].lower()
            if value in allowed or not _plausible(kind, value, before):
                continue
            found.append(Finding(kind, value, match.start(), match.start() + len(value)))
            taken.append(span)
    return sorted(found, key=lambda finding: finding.start)


def redact(text: str, allowed: Collection[str] = ()) -> str:
    for finding in reversed(find_pii(text, allowed)):
        text = text[: finding.start] + PLACEHOLDERS[finding.kind] + text[finding.end :]
    return text


def _plausible(kind: str, value: str, before: str) -> bool:
    """Whether a match is personal data, given the text just `before` it."""
    if kind == "email":
        return True
    if _REFERENCE_WORDS.search(before):
        return False
    digits = re.sub(r"\D", "", value)
    if kind == "card":
        return (
            _luhn(digits)
            and bool(_CARD_PREFIX.match(digits))
            and bool(_CARD_FORMAT.fullmatch(value) or _CARD_WORDS.search(before))
        )
    return 10 <= len(digits) <= 15 and bool(
        _PHONE_FORMAT.fullmatch(value) or _PHONE_WORDS.search(before)
    )


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0
