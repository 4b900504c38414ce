"""Runs fine-tuning jobs, one at a time, in a background thread of the server: each is
`train_adapter` on the uploaded file, with the job's hyperparameters laid over the bot's
`[training]` settings. Steps become metrics events, epoch ends become checkpoints, and a
cancel takes effect at the next step. The trained version is published as a candidate,
so the job's `fine_tuned_model` (NAME@VERSION) can be asked for at once.

A job the server was running when it stopped is queued again at the next start and
resumes from its last checkpoint.

With `[retrain] schedule` set, the runner also queues a retrain job once per hour, day
or week (UTC periods; the period is the job's idempotency key, so two server processes
queue one): `hybrid retrain`, each stage an event, the gate deciding the promotion.
The console queues "compare" jobs too: the gate's verdict on a version, stored with it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from hybrid.bot import Bot
from hybrid.config import with_training
from hybrid.errors import HybridError
from hybrid.types import AdapterRef
from indexes import IndexNotReadyError, open_retriever
from server.files import FileStore
from server.flywheel.retrain import Report, failed_rules, judge_against_active, retrain
from server.jobs import Job, JobSpec, JobStore
from training import Progress, TrainRequest, can_resume, discard_run, train_adapter

T = TypeVar("T")
logger = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 5.0  # also picks up jobs another process queued
PERIODS = {"hourly": 3600, "daily": 86_400, "weekly": 604_800}


class _Stop(Exception):
    """Raised from the progress callback to leave a run: cancelled or shutting down."""


class JobRunner:
    def __init__(self, bot: Bot) -> None:
        import torch

        self.bot = bot
        self._cores = torch.get_num_threads()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._queued_period = ""  # the schedule's period whose retrain is queued already
        self._thread = threading.Thread(target=self._work, name="fine-tuning", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A job was queued."""
        self._wake.set()

    def close(self) -> None:
        """Stop; a job in progress stops at its next step and resumes at the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _work(self) -> None:
        import torch

        # The engine's threads change torch's thread count while they share the cores, and
        # a thread's first use of torch takes the count last set: a job takes them all.
        torch.get_num_threads()
        torch.set_num_threads(self._cores)
        jobs = JobStore(self.bot.database)
        files = FileStore(self.bot.database, self.bot.state_dir / "files")
        try:
            resuming = {job.id for job in jobs.requeue_interrupted()}
            while not self._stopping.is_set():
                self._queue_scheduled_retrain(jobs)
                job = jobs.claim_next()
                if job is None:
                    self._wake.wait(IDLE_POLL_SECONDS)
                    self._wake.clear()
                    continue
                self._run(job, jobs, files, resume=job.id in resuming)
        finally:
            jobs.close()
            files.close()

    def _queue_scheduled_retrain(self, jobs: JobStore) -> None:
        schedule = self.bot.config.retrain.schedule
        if not schedule:
            return
        period = f"retrain-{schedule}-{int(time.time() // PERIODS[schedule])}"
        if period == self._queued_period:
            return  # checked once per period, not at every poll
        spec = JobSpec(
            model=self.bot.config.models.base,
            training_file="interaction-log",
            validation_file=None,
            adapter=self.bot.config.retrain.adapter,
            suffix=None,
            seed=self.bot.config.training.seed,
            metadata={"kind": "retrain", "schedule": schedule},
            kind="retrain",
        )
        jobs.create(spec, period, idempotency_key=period)
        self._queued_period = period

    def _run(self, job: Job, jobs: JobStore, files: FileStore, *, resume: bool) -> None:
        spec = job.spec
        if spec.kind == "retrain":
            self._retrain(job, jobs)
            return
        if spec.kind == "compare":
            self._compare(job, jobs)
            return
        try:
            bot = _with_hyperparameters(self.bot, job)
        except HybridError as exc:  # e.g. a multiplier that takes the rate out of bounds
            jobs.fail(job.id, exc.code, exc.message)
            return
        resume = resume and can_resume(bot, spec.adapter)
        if resume:
            jobs.add_event(job.id, "Resuming from the last checkpoint")

        def progress(update: Progress) -> None:
            if self._stopping.is_set() or jobs.cancel_requested(job.id):
                raise _Stop
            if update.epoch_done:
                metrics = {"step": update.step, "train_loss": update.loss}
                if update.eval_loss is not None:
                    metrics["valid_loss"] = update.eval_loss
                model = f"{spec.adapter}:ckpt-step-{update.step}"
                jobs.add_checkpoint(job.id, update.step, model, metrics)
                return
            jobs.add_event(
                job.id,
                f"Step {update.step}/{update.total_steps}: training loss={update.loss:.4f}",
                data={
                    "step": update.step,
                    "total_steps": update.total_steps,
                    "epoch": update.epoch,
                    "train_loss": update.loss,
                    "tokens_per_second": round(update.tokens_per_second, 1),
                },
            )

        try:
            # Trained as served: with the sources the published index finds, if any.
            retriever = open_retriever(bot)
        except IndexNotReadyError:
            retriever = None
        request = TrainRequest(
            train_file=files.path(spec.training_file),
            name=spec.adapter,
            eval_file=files.path(spec.validation_file) if spec.validation_file else None,
            resume=resume,
            retriever=retriever,
            index_version=retriever.version() if retriever is not None else None,
        )
        try:
            result = train_adapter(bot, request, progress)
        except _Stop:
            if self._stopping.is_set():
                return  # shutting down: the job stays running, to resume at the next start
            end = partial(jobs.mark_cancelled, job.id)
        except HybridError as exc:
            end = partial(jobs.fail, job.id, exc.code, exc.message)
        except Exception:  # the job fails; the runner goes on to the next one
            logger.exception("fine-tuning job %s failed", job.id)
            end = partial(jobs.fail, job.id, "internal_error", "training failed; see the log")
        else:
            model = str(result.adapter.ref)
            jobs.name_last_checkpoint(job.id, model)
            jobs.succeed(job.id, model, result.history.tokens)
            return
        # Nobody resumes a cancelled or failed job: its checkpoints go before it ends.
        discard_run(bot, spec.adapter)
        end()

    def _retrain(self, job: Job, jobs: JobStore) -> None:
        outcome = self._stages(
            job, jobs, lambda report: retrain(self.bot, job.spec.adapter or None, report, job.id)
        )
        if outcome is not None:
            model = str(outcome.candidate) if outcome.candidate else None
            jobs.succeed(job.id, model, None, outcome.summary())

    def _compare(self, job: Job, jobs: JobStore) -> None:
        assert job.spec.candidate is not None
        candidate = AdapterRef.parse(job.spec.candidate)
        gate = self._stages(
            job, jobs, lambda report: judge_against_active(self.bot, candidate, report)
        )
        if gate is not None:
            failed = failed_rules(gate)
            verdict = f"rejected (failed {', '.join(failed)})" if failed else "passed"
            jobs.succeed(job.id, None, None, f"gate: {verdict} against {gate['active']}")

    def _stages(self, job: Job, jobs: JobStore, work: Callable[[Report], T]) -> T | None:
        """Run `work`, each stage it reports an event on the job; None when it did not
        finish (cancelled, failed, or the server is stopping: then it runs again at the
        next start)."""

        def report(stage: str, message: str) -> None:
            if self._stopping.is_set() or jobs.cancel_requested(job.id):
                raise _Stop
            jobs.add_event(job.id, f"{stage}: {message}")

        try:
            return work(report)
        except _Stop:
            if not self._stopping.is_set():
                jobs.mark_cancelled(job.id)
        except HybridError as exc:  # e.g. busy: a `hybrid retrain` is running
            jobs.fail(job.id, exc.code, exc.message)
        except Exception:
            logger.exception("%s job %s failed", job.spec.kind, job.id)
            jobs.fail(job.id, "internal_error", f"the {job.spec.kind} failed; see the log")
        return None


def _with_hyperparameters(bot: Bot, job: Job) -> Bot:
    """The bot with the job's hyperparameters over its `[training]` settings."""
    spec, training = job.spec, bot.config.training
    config = with_training(
        bot.config,
        epochs=spec.n_epochs,
        batch_size=spec.batch_size,
        learning_rate=training.learning_rate * (spec.learning_rate_multiplier or 1.0),
        seed=spec.seed,
    )
    return Bot(bot.root, config)
