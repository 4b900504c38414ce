"""Choosing `retrieval.handover_below` from questions whose answer the documents hold
and questions they do not: the threshold on the best chunk's dense similarity that
hands over as many unanswerable questions as it can while handing over at most
`max_false` of the answerable ones."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from hybrid.errors import InvalidInputError
from hybrid.protocols import Retriever


@dataclass(frozen=True)
class Calibration:
    threshold: float
    handed_over_unanswerable: int  # below the threshold: recall's numerator
    unanswerable: int
    handed_over_answerable: int  # below the threshold by mistake
    answerable: int


def calibrate_handover(
    retriever: Retriever,
    answerable: Sequence[str],
    unanswerable: Sequence[str],
    *,
    max_false: float = 0.05,
) -> Calibration:
    if not answerable or not unanswerable:
        raise InvalidInputError(
            "calibrating needs answerable and unanswerable questions "
            '(golden lines with "answerable": false)'
        )
    known = sorted(retriever.relevance(question) for question in answerable)
    unknown = [retriever.relevance(question) for question in unanswerable]
    # At most `max_false` of the answerable questions may score below the threshold.
    allowed = math.floor(max_false * len(known))
    threshold = round(known[allowed] - 1e-4, 4) if allowed < len(known) else known[-1]
    return Calibration(
        threshold=max(threshold, 0.0),
        handed_over_unanswerable=sum(score < threshold for score in unknown),
        unanswerable=len(unknown),
        handed_over_answerable=sum(score < threshold for score in known),
        answerable=len(known),
    )
