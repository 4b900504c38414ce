"""The review queue (/admin/review): the answers most likely wrong first, each with the
conversation, the sources it was given, and the adapter and index versions that made
it; one action each to correct it (a correction the next export trains on), add it to
the golden set, or keep it out of training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar import get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from hybrid.errors import ConflictError, InvalidInputError
from server.console.rendering import FORM, FORM_BODY, done, page, typed
from server.flywheel.review import ReviewItem, add_to_golden_set, golden_path, review_queue
from server.interactions import InteractionLog
from server.routes.params import IdPath
from server.state import ServerState

SHOWN = 200  # answers listed at most (the waiting ones come first)


@dataclass
class Correction:
    answer: str = ""
    rating: int = 2


@dataclass
class GoldenEntry:
    reference: str = ""
    facts: str = ""  # one per line
    answerable: str = ""  # a checkbox: "on" when ticked


@get("/review", sync_to_thread=True)
def queue(server: NamedDependency[ServerState]) -> Template:
    items = review_queue(server.bot, _log(server).answers())
    return page(
        "review.html.j2",
        "Review",
        section="review",
        items=items[:SHOWN],
        waiting=sum(item.waiting for item in items),
        total=len(items),
    )


@get("/review/{answer_id:str}", sync_to_thread=True)
def answer_page(answer_id: IdPath, server: NamedDependency[ServerState]) -> Template:
    return page("answer.html.j2", "Answer", section="review", item=_item(server, answer_id),
                golden=golden_path(server.bot).relative_to(server.bot.root))  # fmt: skip


@post("/review/{answer_id:str}/correct", sync_to_thread=True, opt=FORM)
def correct(
    answer_id: IdPath,
    server: NamedDependency[ServerState],
    data: Annotated[Correction, FORM_BODY],
) -> Redirect:
    answer = typed(data.answer)
    if not answer:
        raise InvalidInputError("the corrected answer is empty", param="answer")
    if not 1 <= data.rating <= 5:
        raise InvalidInputError("the rating must be 1 to 5", param="rating")
    _log(server).add_feedback(answer_id, data.rating, corrected_answer=answer)
    server.watch_promotions()
    return done(f"/admin/review/{answer_id}", "Correction saved: the next export trains on it.")


@post("/review/{answer_id:str}/golden", sync_to_thread=True, opt=FORM)
def to_golden_set(
    answer_id: IdPath,
    server: NamedDependency[ServerState],
    data: Annotated[GoldenEntry, FORM_BODY],
) -> Redirect:
    answer = _log(server).answer(answer_id)
    case = add_to_golden_set(
        server.bot,
        answer,
        typed(data.reference),
        typed(data.facts).splitlines(),
        data.answerable == "on",
    )
    return done(f"/admin/review/{answer_id}", f"Added to the golden set as {case.id}.")


@post("/review/{answer_id:str}/exclude", sync_to_thread=True, opt=FORM)
def exclude(answer_id: IdPath, server: NamedDependency[ServerState]) -> Redirect:
    _log(server).exclude(answer_id)
    return done(f"/admin/review/{answer_id}", "Excluded from training.")


def _item(server: ServerState, answer_id: str) -> ReviewItem:
    items = review_queue(server.bot, [_log(server).answer(answer_id)])
    if not items:
        raise ConflictError(f"the log row of {answer_id} cannot be read", param="answer_id")
    return items[0]


def _log(server: ServerState) -> InteractionLog:
    if server.log is None:  # opened as the server starts loading
        server.ready()  # says why there is none
    assert server.log is not None
    return server.log


ROUTES = [queue, answer_page, correct, to_golden_set, exclude]
