"""Fine-tuning jobs (OpenAI's /v1/fine_tuning/jobs), kept in sqlite: what each job asked
for, where it stands, its events and its checkpoints. Plain Python, no web imports; the
training itself is done by server/job_runner.py.

A job moves queued -> running -> succeeded | failed | cancelled. Creating one is
idempotent in two ways, because the SDK retries a create whose answer it did not get
(a timeout, a dropped connection) with no idempotency key: a create carrying an
`Idempotency-Key` header returns the job made with that key, and one without returns
the job made from identical parameters in the last RETRY_WINDOW seconds, unless that
job failed or was cancelled.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hybrid.database import open_database, write_transaction
from hybrid.errors import ConflictError, NotFoundError

Status = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled"]
FINISHED = ("succeeded", "failed", "cancelled")
RETRY_WINDOW = 600.0  # seconds


def _migration_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, "
        "created_at REAL NOT NULL, spec TEXT NOT NULL, fingerprint TEXT NOT NULL, "
        "idempotency_key TEXT UNIQUE, status TEXT NOT NULL, "
        "cancel_requested INTEGER NOT NULL DEFAULT 0, fine_tuned_model TEXT, "
        "trained_tokens INTEGER, finished_at REAL, error TEXT)"
    )
    db.execute("CREATE INDEX jobs_by_fingerprint ON jobs (fingerprint, created_at)")
    db.execute(
        "CREATE TABLE job_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, "
        "created_at REAL NOT NULL, level TEXT NOT NULL, type TEXT NOT NULL, "
        "message TEXT NOT NULL, data TEXT)"
    )
    db.execute("CREATE INDEX job_events_by_job ON job_events (job_id, seq)")
    db.execute(
        "CREATE TABLE job_checkpoints (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
        "job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE, "
        "created_at REAL NOT NULL, step INTEGER NOT NULL, model TEXT NOT NULL, "
        "metrics TEXT NOT NULL)"
    )


class JobNotFoundError(NotFoundError):
    code = "fine_tuning_job_not_found"


class JobConflictError(ConflictError):
    code = "conflict"


@dataclass(frozen=True)
class JobSpec:
    """A validated create request. A hyperparameter left None is the bot's setting
    ("auto" in OpenAI's terms)."""

    model: str
    training_file: str
    validation_file: str | None
    adapter: str  # the adapter name the job trains a new version of
    suffix: str | None
    seed: int
    n_epochs: int | None = None
    batch_size: int | None = None
    learning_rate_multiplier: float | None = None
    metadata: dict[str, str] | None = None
    # "retrain": `hybrid retrain` on the server's schedule (no training file; the gate
    # decides the promotion). "compare": the gate's verdict on `candidate` against the
    # active version, stored with it (the console's comparison; nothing is trained).
    kind: Literal["fine-tune", "retrain", "compare"] = "fine-tune"
    candidate: str | None = None  # NAME@VERSION, for "compare"


@dataclass(frozen=True)
class Job:
    id: str
    created_at: float
    spec: JobSpec
    status: Status
    cancel_requested: bool
    fine_tuned_model: str | None
    trained_tokens: int | None
    finished_at: float | None
    error: dict[str, str] | None


@dataclass(frozen=True)
class JobEvent:
    id: str
    created_at: float
    level: Literal["info", "warn", "error"]
    type: Literal["message", "metrics"]
    message: str
    data: dict[str, Any] | None


@dataclass(frozen=True)
class JobCheckpoint:
    id: str
    job_id: str
    created_at: float
    step: int
    model: str  # the adapter version it became, or "name:ckpt-step-N" before that
    metrics: dict[str, float]


class JobStore:
    def __init__(self, database: Path) -> None:
        self.db = open_database(database, "jobs", [_migration_1])
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    # -- jobs -----------------------------------------------------------------------------

    def create(
        self, spec: JobSpec, fingerprint: str, idempotency_key: str | None = None
    ) -> tuple[Job, bool]:
        """The job for this request, and whether it is new (False: a retry's original)."""
        with write_transaction(self.db):
            earlier = self._original(fingerprint, idempotency_key)
            if earlier is not None:
                return earlier, False
            job_id = f"ftjob-{secrets.token_hex(12)}"
            self.db.execute(
                "INSERT INTO jobs (id, created_at, spec, fingerprint, idempotency_key, status) "
                "VALUES (?, ?, ?, ?, ?, 'queued')",
                [job_id, time.time(), json.dumps(spec.__dict__), fingerprint, idempotency_key],
            )
            self._event(job_id, f"Created fine-tuning job {job_id}")
        return self.get(job_id), True

    def _original(self, fingerprint: str, idempotency_key: str | None) -> Job | None:
        if idempotency_key is not None:
            row = self.db.execute(
                "SELECT * FROM jobs WHERE idempotency_key = ?", [idempotency_key]
            ).fetchone()
            if row is not None and row["fingerprint"] != fingerprint:
                raise JobConflictError(
                    "this Idempotency-Key was already used for a job with other parameters",
                    hint="use a new key for a new job",
                )
        else:
            row = self.db.execute(
                "SELECT * FROM jobs WHERE fingerprint = ? AND idempotency_key IS NULL "
                "AND created_at > ? AND status NOT IN ('failed', 'cancelled') "
                "ORDER BY seq DESC LIMIT 1",
                [fingerprint, time.time() - RETRY_WINDOW],
            ).fetchone()
        return _job(row) if row is not None else None

    def get(self, job_id: str) -> Job:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", [job_id]).fetchone()
        if row is None:
            raise JobNotFoundError(f"no fine-tuning job {job_id!r}", param="fine_tuning_job_id")
        return _job(row)

    def list(self) -> list[Job]:
        """Newest first."""
        return [_job(row) for row in self.db.execute("SELECT * FROM jobs ORDER BY seq DESC")]

    def cancel(self, job_id: str) -> Job:
        """A queued job is cancelled at once; a running one at its next training step."""
        with write_transaction(self.db):
            job = self.get(job_id)
            if job.status in FINISHED:
                raise JobConflictError(f"job {job_id} has already {job.status}")
            if job.status == "queued":
                self._cancelled(job_id)
            else:
                self.db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", [job_id])
        return self.get(job_id)

    # -- the runner's side ---------------------------------------------------------------

    def newest(self, kind: str) -> Job | None:
        row = self.db.execute(
            "SELECT * FROM jobs WHERE json_extract(spec, '$.kind') = ? ORDER BY seq DESC LIMIT 1",
            [kind],
        ).fetchone()
        return _job(row) if row is not None else None

    def requeue_interrupted(self) -> list[Job]:
        """Jobs left running by a server that stopped mid-run go back to the queue."""
        with write_transaction(self.db):
            rows = self.db.execute("SELECT * FROM jobs WHERE status = 'running'").fetchall()
            for row in rows:
                self.db.execute("UPDATE jobs SET status = 'queued' WHERE id = ?", [row["id"]])
                self._event(row["id"], "The server stopped during this job; it will resume")
        return [_job(row) for row in rows]

    def claim_next(self) -> Job | None:
        """The oldest queued job, now marked running."""
        with write_transaction(self.db):
            row = self.db.execute(
                "SELECT * FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self.db.execute("UPDATE jobs SET status = 'running' WHERE id = ?", [row["id"]])
            self._event(row["id"], "Fine-tuning job started")
        return self.get(row["id"])

    def cancel_requested(self, job_id: str) -> bool:
        row = self.db.execute("SELECT cancel_requested FROM jobs WHERE id = ?", [job_id])
        return bool(row.fetchone()[0])

    def succeed(
        self, job_id: str, model: str | None, trained_tokens: int | None, note: str = ""
    ) -> None:
        """Finished: with the adapter version it made (None: a retrain that had nothing
        to do), and a closing note."""
        with write_transaction(self.db):
            self.db.execute(
                "UPDATE jobs SET fine_tuned_model = ?, trained_tokens = ? WHERE id = ?",
                [model, trained_tokens, job_id],
            )
            self._finish(job_id, "succeeded")
            if model is not None:
                self._event(job_id, f"New fine-tuned model created: {model}")
            if note:
                self._event(job_id, note)
            self._event(job_id, "The job has successfully completed")

    def fail(self, job_id: str, code: str, message: str) -> None:
        with write_transaction(self.db):
            self.db.execute(
                "UPDATE jobs SET error = ? WHERE id = ?",
                [json.dumps({"code": code, "message": message}), job_id],
            )
            self._finish(job_id, "failed")
            self._event(job_id, f"The job failed: {message}", level="error")

    def mark_cancelled(self, job_id: str) -> None:
        with write_transaction(self.db):
            self._cancelled(job_id)

    def _cancelled(self, job_id: str) -> None:
        self._finish(job_id, "cancelled")
        self._event(job_id, "Job cancelled")

    def _finish(self, job_id: str, status: Status) -> None:
        self.db.execute(
            "UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?",
            [status, time.time(), job_id],
        )

    # -- events and checkpoints --------------------------------------------------------

    def add_event(
        self,
        job_id: str,
        message: str,
        *,
        level: Literal["info", "warn", "error"] = "info",
        data: dict[str, Any] | None = None,
    ) -> None:
        with write_transaction(self.db):
            self._event(job_id, message, level=level, data=data)

    def _event(
        self,
        job_id: str,
        message: str,
        *,
        level: str = "info",
        data: dict[str, Any] | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO job_events (job_id, created_at, level, type, message, data) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [
                job_id,
                time.time(),
                level,
                "metrics" if data is not None else "message",
                message,
                json.dumps(data) if data is not None else None,
            ],
        )

    def events(self, job_id: str) -> list[JobEvent]:
        """Newest first."""
        self.get(job_id)
        rows = self.db.execute(
            "SELECT * FROM job_events WHERE job_id = ? ORDER BY seq DESC", [job_id]
        )
        return [
            JobEvent(
                id=f"ftevent-{row['seq']}",
                created_at=row["created_at"],
                level=row["level"],
                type=row["type"],
                message=row["message"],
                data=json.loads(row["data"]) if row["data"] else None,
            )
            for row in rows
        ]

    def add_checkpoint(self, job_id: str, step: int, model: str, metrics: dict[str, float]) -> None:
        with write_transaction(self.db):
            self.db.execute(
                "INSERT INTO job_checkpoints (job_id, created_at, step, model, metrics) "
                "VALUES (?, ?, ?, ?, ?)",
                [job_id, time.time(), step, model, json.dumps(metrics)],
            )

    def name_last_checkpoint(self, job_id: str, model: str) -> None:
        """The final checkpoint is the published adapter: name it so."""
        with write_transaction(self.db):
            self.db.execute(
                "UPDATE job_checkpoints SET model = ? WHERE seq = "
                "(SELECT max(seq) FROM job_checkpoints WHERE job_id = ?)",
                [model, job_id],
            )

    def checkpoints(self, job_id: str) -> list[JobCheckpoint]:
        """Newest first."""
        self.get(job_id)
        rows = self.db.execute(
            "SELECT * FROM job_checkpoints WHERE job_id = ? ORDER BY seq DESC", [job_id]
        )
        return [
            JobCheckpoint(
                id=f"ftckpt-{row['seq']}",
                job_id=job_id,
                created_at=row["created_at"],
                step=row["step"],
                model=row["model"],
                metrics=json.loads(row["metrics"]),
            )
            for row in rows
        ]


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        created_at=row["created_at"],
        spec=JobSpec(**json.loads(row["spec"])),
        status=row["status"],
        cancel_requested=bool(row["cancel_requested"]),
        fine_tuned_model=row["fine_tuned_model"],
        trained_tokens=row["trained_tokens"],
        finished_at=row["finished_at"],
        error=json.loads(row["error"]) if row["error"] else None,
    )
