"""OpenAI's cursor pagination: a page holds the items after the one named `after`, and
says whether more follow (the SDK keeps asking while `has_more` is true)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar


class _Identified(Protocol):
    @property
    def id(self) -> str: ...


T = TypeVar("T", bound=_Identified)


def cursor_page(items: Sequence[T], after: str | None, limit: int) -> tuple[list[T], bool]:
    """At most `limit` of the items following the one whose id is `after` (from the
    first, without it), and whether more follow. An unknown `after` gives an empty page."""
    if after is not None:
        ids = [item.id for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    return list(items[:limit]), len(items) > limit
