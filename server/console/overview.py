"""GET /admin: the day at a glance — the active adapters, the index version, today's
answers, their mean rating and hand-over rate, the last retrain's outcome, the gate's
last verdict and how many answers wait for review."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Template

from indexes import index_status
from server.console.rendering import page
from server.flywheel.retrain import read_gate_report
from server.flywheel.review import review_queue
from server.jobs import Job
from server.state import ServerState
from training import AdapterRecord


@dataclass(frozen=True)
class Today:
    answers: int
    rated: int
    mean_rating: float | None
    handover_rate: float | None


@get("/", sync_to_thread=True)
def overview(server: NamedDependency[ServerState]) -> Template:
    bot = server.bot
    answers = server.log.answers() if server.log is not None else []
    queue = review_queue(bot, answers)
    midnight = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    today = [item for item in queue if item.answer.created_at >= midnight.timestamp()]
    ratings = [item.answer.rating for item in today if item.answer.rating is not None]
    figures = Today(
        answers=len(today),
        rated=len(ratings),
        mean_rating=sum(ratings) / len(ratings) if ratings else None,
        handover_rate=sum(i.checks.handed_over for i in today) / len(today) if today else None,
    )
    versions = server.registry().list()
    active: list[AdapterRecord] = [r for r in versions if r.status == "active"]
    verdicts = [(r, g) for r in versions if (g := read_gate_report(r)) is not None]
    last_verdict = max(verdicts, key=lambda pair: pair[1].get("judged_at", 0), default=None)
    retrain: Job | None = server.jobs().newest("retrain")
    last_word = server.jobs().events(retrain.id)[0].message if retrain else None  # newest
    return page(
        "overview.html.j2",
        "Overview",
        section="overview",
        active=active,
        index=index_status(bot),
        today=figures,
        retrain=retrain,
        retrain_outcome=last_word,
        last_verdict=last_verdict,
        waiting=sum(item.waiting for item in queue),
    )


ROUTES = [overview]
