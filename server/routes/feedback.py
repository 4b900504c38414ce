"""POST /v1/feedback: a user's rating of an answer (and optionally the answer it should
have been), tied to the completion id the chat returned. These rows are what the next
style adapter is trained from."""

from __future__ import annotations

from litestar import post

from hybrid.errors import HybridError
from server.auth import CHAT
from server.schemas import Feedback, FeedbackRequest
from server.state import ServerState


class CompletionNotFoundError(HybridError):
    code = "completion_not_found"
    status = 404


@post("/v1/feedback", status_code=201, sync_to_thread=True, guards=CHAT)
def give_feedback(data: FeedbackRequest, server: ServerState) -> Feedback:
    server.ready()
    log = server.log
    assert log is not None
    if not log.exists(data.completion_id):
        raise CompletionNotFoundError(
            f"no answer with id {data.completion_id!r} was logged",
            hint="use the `id` of a chat completion this server returned",
            param="completion_id",
        )
    feedback_id = log.add_feedback(
        data.completion_id, data.rating, data.corrected_answer, data.comment
    )
    return Feedback(id=feedback_id, completion_id=data.completion_id, rating=data.rating)


ROUTES = [give_feedback]
