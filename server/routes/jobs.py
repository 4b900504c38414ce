"""OpenAI's fine-tuning jobs API: POST/GET /v1/fine_tuning/jobs, GET /v1/fine_tuning/jobs/{id},
POST .../{id}/cancel, GET .../{id}/events and .../{id}/checkpoints (admin scope). A job
trains a new version of the adapter named by its `suffix` (default "style"); the work is
done by the server's JobRunner."""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal, TypeVar

import msgspec
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from hybrid.errors import HybridError, InvalidInputError
from server.auth import ADMIN
from server.files import FileNotFoundInStoreError
from server.jobs import Job, JobSpec
from server.pages import cursor_page
from server.routes.params import Cursor, IdPath
from server.schemas import (
    CheckpointMetrics,
    CreateJobRequest,
    FineTuningJob,
    FineTuningJobList,
    JobCheckpointList,
    JobCheckpointObject,
    JobError,
    JobEventList,
    JobEventObject,
    JobHyperparameters,
    JobMethod,
    SupervisedMethod,
)
from server.state import ServerState
from training.registry import check_adapter_name

DEFAULT_ADAPTER = "style"  # as `hybrid train`
PageSize = Annotated[int, QueryParameter(ge=1, le=1000)]
T = TypeVar("T")


@post("/v1/fine_tuning/jobs", status_code=200, sync_to_thread=True, guards=ADMIN)
def create_job(
    data: JSONBody[CreateJobRequest], request: Request, server: NamedDependency[ServerState]
) -> FineTuningJob:
    return _object(submit_job(data, server, request.headers.get("idempotency-key")))


def submit_job(data: CreateJobRequest, server: ServerState, idempotency_key: str | None) -> Job:
    """Check the request, queue the job (or find the one an identical request made) and
    wake the runner; the API and the console both start jobs through here."""
    spec = _spec(data, server)
    # The SDK resends the same body when it retries: identical bodies are one job.
    fingerprint = hashlib.sha256(msgspec.json.encode(data, order="sorted")).hexdigest()
    job, created = server.jobs().create(spec, fingerprint, idempotency_key)
    if created:
        server.job_runner.notify()
    return job


@get("/v1/fine_tuning/jobs", sync_to_thread=False, guards=ADMIN)
def list_jobs(
    server: NamedDependency[ServerState],
    after: Cursor = None,
    limit: PageSize = 20,
) -> FineTuningJobList:
    """Newest first."""
    page, has_more = cursor_page(server.jobs().list(), after, limit)
    return FineTuningJobList(data=[_object(job) for job in page], has_more=has_more)


@get("/v1/fine_tuning/jobs/{job_id:str}", sync_to_thread=False, guards=ADMIN)
def retrieve_job(job_id: IdPath, server: NamedDependency[ServerState]) -> FineTuningJob:
    return _object(server.jobs().get(job_id))


@post("/v1/fine_tuning/jobs/{job_id:str}/cancel", status_code=200, sync_to_thread=False,
      guards=ADMIN)  # fmt: skip
def cancel_job(job_id: IdPath, server: NamedDependency[ServerState]) -> FineTuningJob:
    return _object(server.jobs().cancel(job_id))


@get("/v1/fine_tuning/jobs/{job_id:str}/events", sync_to_thread=False, guards=ADMIN)
def list_events(
    job_id: IdPath,
    server: NamedDependency[ServerState],
    after: Cursor = None,
    limit: PageSize = 20,
) -> JobEventList:
    """Newest first."""
    page, has_more = cursor_page(server.jobs().events(job_id), after, limit)
    events = [
        JobEventObject(
            id=event.id,
            created_at=int(event.created_at),
            level=event.level,
            type=event.type,
            message=event.message,
            data=event.data,
        )
        for event in page
    ]
    return JobEventList(data=events, has_more=has_more)


@get("/v1/fine_tuning/jobs/{job_id:str}/checkpoints", sync_to_thread=False, guards=ADMIN)
def list_checkpoints(
    job_id: IdPath,
    server: NamedDependency[ServerState],
    after: Cursor = None,
    limit: PageSize = 10,
) -> JobCheckpointList:
    """Newest first: one per epoch."""
    page, has_more = cursor_page(server.jobs().checkpoints(job_id), after, limit)
    checkpoints = [
        JobCheckpointObject(
            id=checkpoint.id,
            created_at=int(checkpoint.created_at),
            fine_tuning_job_id=checkpoint.job_id,
            fine_tuned_model_checkpoint=checkpoint.model,
            step_number=checkpoint.step,
            metrics=msgspec.convert(checkpoint.metrics, CheckpointMetrics),
        )
        for checkpoint in page
    ]
    return JobCheckpointList(
        data=checkpoints,
        has_more=has_more,
        first_id=checkpoints[0].id if checkpoints else None,
        last_id=checkpoints[-1].id if checkpoints else None,
    )


def _spec(data: CreateJobRequest, server: ServerState) -> JobSpec:
    """Refuse what hybrid cannot do before a job exists."""
    if data.model != server.base_model_id:
        raise InvalidInputError(
            f"model {data.model!r} cannot be fine-tuned here",
            hint=f"fine-tune the bot's base model, {server.base_model_id!r}",
            param="model",
        )
    if data.method is not None and data.method.type != "supervised":
        raise InvalidInputError(
            f"method {data.method.type!r} is not supported; hybrid trains supervised LoRA",
            param="method",
        )
    if data.integrations:
        raise InvalidInputError("integrations are not supported", param="integrations")
    for param, file_id in (("training_file", data.training_file),
                           ("validation_file", data.validation_file)):  # fmt: skip
        if file_id is not None:
            try:
                server.files().get(file_id)
            except FileNotFoundInStoreError:
                raise InvalidInputError(f"no file {file_id!r}", param=param) from None
    adapter = data.suffix or DEFAULT_ADAPTER
    try:
        check_adapter_name(adapter)
    except HybridError as exc:
        raise InvalidInputError(exc.message, hint=exc.hint, param="suffix") from None
    hyperparameters = _hyperparameters(data)
    return JobSpec(
        model=data.model,
        training_file=data.training_file,
        validation_file=data.validation_file,
        adapter=adapter,
        suffix=data.suffix,
        seed=data.seed if data.seed is not None else server.bot.config.training.seed,
        n_epochs=_given(hyperparameters.n_epochs),
        batch_size=_given(hyperparameters.batch_size),
        learning_rate_multiplier=_given(hyperparameters.learning_rate_multiplier),
        metadata=data.metadata,
    )


def _hyperparameters(data: CreateJobRequest) -> JobHyperparameters:
    supervised = data.method.supervised if data.method else None
    if supervised is not None and supervised.hyperparameters is not None:
        return supervised.hyperparameters
    return data.hyperparameters or JobHyperparameters()


def _given(value: T | Literal["auto"]) -> T | None:
    return None if value == "auto" else value


def _object(job: Job) -> FineTuningJob:
    spec = job.spec
    hyperparameters = JobHyperparameters(
        n_epochs=spec.n_epochs or "auto",
        batch_size=spec.batch_size or "auto",
        learning_rate_multiplier=spec.learning_rate_multiplier or "auto",
    )
    return FineTuningJob(
        id=job.id,
        created_at=int(job.created_at),
        model=spec.model,
        status=job.status,
        training_file=spec.training_file,
        validation_file=spec.validation_file,
        hyperparameters=hyperparameters,
        method=JobMethod(
            type="supervised", supervised=SupervisedMethod(hyperparameters=hyperparameters)
        ),
        seed=spec.seed,
        fine_tuned_model=job.fine_tuned_model,
        finished_at=int(job.finished_at) if job.finished_at else None,
        trained_tokens=job.trained_tokens,
        error=JobError(**job.error) if job.error else None,
        user_provided_suffix=spec.suffix,
        metadata=spec.metadata,
    )


ROUTES = [create_job, list_jobs, retrieve_job, cancel_job, list_events, list_checkpoints]
