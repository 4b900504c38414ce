"""Training jobs (/admin/jobs): start one from an uploaded file or an exported dataset
snapshot with the hyperparameters the API takes, follow it (progress, a loss plot that
redraws while it runs, its events) and cancel it. Jobs are the fine-tuning jobs of the
API: one queue, one runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from hybrid.errors import InvalidInputError
from server.console.plots import loss_plot
from server.console.rendering import FORM, UPLOAD, UPLOAD_BODY, done, page
from server.jobs import FINISHED
from server.routes.jobs import DEFAULT_ADAPTER, submit_job
from server.routes.params import IdPath
from server.schemas import CreateJobRequest
from server.state import ServerState
from training.snapshots import list_snapshots, read_snapshot


@dataclass
class NewJob:
    upload: UploadFile | None = None
    snapshot: str = ""  # an exported dataset snapshot's id, when no file is uploaded
    suffix: str = DEFAULT_ADAPTER
    n_epochs: str = ""  # blank: "auto" (the bot's setting), as in the API
    batch_size: str = ""
    learning_rate_multiplier: str = ""


@get("/jobs", sync_to_thread=True)
def jobs(server: NamedDependency[ServerState]) -> Template:
    return page(
        "jobs.html.j2",
        "Training jobs",
        section="jobs",
        jobs=list(reversed(server.jobs().list())),
        snapshots=list_snapshots(server.bot.datasets_dir),
        default_adapter=DEFAULT_ADAPTER,
    )


@post("/jobs", sync_to_thread=True, opt=UPLOAD)
def start_job(
    server: NamedDependency[ServerState],
    data: Annotated[NewJob, UPLOAD_BODY],
) -> Redirect:
    if data.upload is not None and data.upload.filename:
        name, content = data.upload.filename, data.upload.file.read()
    elif data.snapshot:
        snapshot = read_snapshot(server.bot.datasets_dir, data.snapshot)
        name, content = f"{snapshot.id}.jsonl", snapshot.data_file.read_bytes()
    else:
        raise InvalidInputError("choose a training file or an exported dataset", param="upload")
    stored = server.files().add(name, "fine-tune", content)
    given = {
        field: value
        for field in ("n_epochs", "batch_size", "learning_rate_multiplier")
        if (value := getattr(data, field).strip())
    }
    request = {
        "model": server.base_model_id,
        "training_file": stored.id,
        "suffix": data.suffix.strip() or DEFAULT_ADAPTER,
        "hyperparameters": given,
    }
    try:
        checked = msgspec.convert(request, CreateJobRequest, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidInputError(f"hyperparameters: {exc}", param="hyperparameters") from None
    job = submit_job(checked, server, idempotency_key=None)
    return done(f"/admin/jobs/{job.id}", f"Job {job.id} queued.")


@get("/jobs/{job_id:str}", sync_to_thread=True)
def job_page(job_id: IdPath, server: NamedDependency[ServerState]) -> Template:
    return page("job.html.j2", job_id, section="jobs", **_progress(server, job_id))


@get("/jobs/{job_id:str}/progress", sync_to_thread=True)
def job_progress(job_id: IdPath, server: NamedDependency[ServerState]) -> Template:
    """The part of the job page that changes while it runs (the page's script swaps it in)."""
    return page("_job_progress.html.j2", job_id, **_progress(server, job_id))


@post("/jobs/{job_id:str}/cancel", sync_to_thread=True, opt=FORM)
def cancel(job_id: IdPath, server: NamedDependency[ServerState]) -> Redirect:
    server.jobs().cancel(job_id)
    return done(f"/admin/jobs/{job_id}", "Cancellation requested.")


def _progress(server: ServerState, job_id: str) -> dict[str, object]:
    store = server.jobs()
    job = store.get(job_id)
    events = store.events(job_id)  # newest first
    steps = [e.data for e in reversed(events) if e.data and "train_loss" in e.data]
    losses = [(step["step"], step["train_loss"]) for step in steps]
    return {
        "job": job,
        "events": events,
        "step": steps[-1]["step"] if steps else None,
        "total_steps": steps[-1]["total_steps"] if steps else None,
        "plot": loss_plot([("training loss", losses, True)]),
        "running": job.status not in FINISHED,
    }


ROUTES = [jobs, start_job, job_page, job_progress, cancel]
