"""POST /v1/feedback: a user's rating of an answer (and optionally the answer it should
have been), tied to the completion id the chat returned. These rows are what the next
style adapter is trained from."""

from __future__ import annotations

from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from server.auth import CHAT
from server.schemas import Feedback, FeedbackRequest
from server.state import ServerState


@post("/v1/feedback", status_code=201, sync_to_thread=True, guards=CHAT)
def give_feedback(
    data: JSONBody[FeedbackRequest], server: NamedDependency[ServerState]
) -> Feedback:
    server.ready()
    log = server.log
    assert log is not None
    feedback_id = log.add_feedback(
        data.completion_id, data.rating, data.corrected_answer, data.comment
    )
    server.watch_promotions()
    return Feedback(id=feedback_id, completion_id=data.completion_id, rating=data.rating)


ROUTES = [give_feedback]
