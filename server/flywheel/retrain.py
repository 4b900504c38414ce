"""`hybrid retrain`: from the conversations the bot really had to a better adapter,
promoted only through the gate.

Stages: export the curated conversations since the active version's data -> add the
earlier training data (the replay file, in the serving prompt, and every earlier log
snapshot of the lineage) -> lint -> train (from the active version's weights, unless
`retrain.warm_start` is off) -> evaluate the candidate against the active
version on the golden set and against the base model on the forgetting probe, in one
batched run -> gate -> promote if it passes. The gate report is stored with the
candidate (gate.json, gate.html) before any promotion.

One run at a time per bot (a lock the kernel drops when its process dies). A run killed
at any stage leaves the active version serving; the next run resumes: the same
conversations make the same snapshot, so training resumes from its checkpoint, and a
candidate already trained on that snapshot is judged (or its verdict reused), not
trained again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import msgspec

from hybrid.bot import Bot
from hybrid.errors import BusyError, ConflictError, InvalidInputError
from hybrid.staging import write_file_atomically
from hybrid.types import AdapterRef
from indexes import HybridRetriever, embedder_for_bot
from server.evaluation import read_golden
from server.flywheel.curation import ExportRequest, ExportResult, export_from_logs
from server.flywheel.gate import RULES_REVISION
from server.flywheel.verdict import Verdict, judge_candidate_against
from server.flywheel.watch import PromotionWatch
from training import (
    AdapterRecord,
    AdapterRegistry,
    TrainRequest,
    can_resume,
    discard_run,
    lint_for_training,
    load_tokenizer,
    read_dataset,
    train_adapter,
    with_retrieval,
)
from training.continuation import start_conflict
from training.snapshots import Snapshot, read_snapshot, write_snapshot

Status = Literal["promoted", "rejected", "nothing_to_do"]
GATE_FILE = "gate.json"
# stage, message: what the CLI prints and the server's job records as an event.
Report = Callable[[str, str], None]


@dataclass
class RetrainOutcome:
    status: Status
    active: AdapterRef
    candidate: AdapterRef | None = None
    export: ExportResult | None = None
    gate: dict[str, Any] | None = None  # the stored gate report
    seconds: dict[str, float] = field(default_factory=dict)  # per stage

    def summary(self) -> str:
        """One line for a person: what happened and why."""
        if self.status == "nothing_to_do":
            kept = self.export.kept if self.export else 0
            return f"nothing to do: {kept} new example(s); {self.active} stays active"
        if self.status == "promoted":
            return f"promoted: the gate passed, {self.candidate} replaces {self.active}"
        assert self.gate is not None
        failed = "; ".join(
            f"{rule['name']}: {rule['detail']}" for rule in self.gate["rules"] if not rule["passed"]
        )
        return f"rejected: {self.candidate} stays a candidate (failed {failed})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "active": str(self.active),
            "candidate": str(self.candidate) if self.candidate else None,
            "export": self.export.to_dict() if self.export else None,
            "gate": self.gate,
            "seconds": {stage: round(s, 2) for stage, s in self.seconds.items()},
        }


def retrain(
    bot: Bot, name: str | None = None, report: Report | None = None, job_id: str | None = None
) -> RetrainOutcome:
    """Run every stage; raises BusyError if another retrain of this bot is running.
    A promotion is then watched (server/flywheel/watch.py), on behalf of `job_id`."""
    say = report or (lambda stage, message: None)
    settings = bot.config.retrain
    with _only_run(bot):
        active = _active_version(bot, name or settings.adapter or None)
        outcome = RetrainOutcome("nothing_to_do", active.ref)
        timer = _StageTimer(outcome.seconds, say)

        with timer("export"):
            lineage = _lineage(bot, active)
            request = ExportRequest(
                min_rating=settings.min_rating,
                since=lineage["until"] + 1e-6,
                golden=bot.root / settings.golden,
            )
            outcome.export = export_from_logs(bot, request)
            kept = outcome.export.kept
            say("export", f"{kept} new example(s) from {outcome.export.considered} answer(s)")
        if kept < settings.min_new_examples or outcome.export.snapshot is None:
            say("export", f"nothing to do: fewer than {settings.min_new_examples} new examples")
            return outcome

        with timer("data"):
            data = _training_set(bot, active, lineage, outcome.export.snapshot)
            say("data", f"{data.examples} examples in snapshot {data.id}")
        with timer("lint"):
            _lint(bot, data)
        candidate = _earlier_version(bot, active.name, data.id)
        if candidate is not None and candidate.promoted_at is not None:
            # Trained on exactly this data, promoted, then rolled back: the same data would
            # make the same version again.
            say("data", f"{candidate.ref} was trained on this data and rolled back: skipped")
            return outcome
        with timer("train"):
            if candidate is None:
                candidate = _train(bot, active, data, say)
            else:
                say("train", f"{candidate.ref} was trained on this data already: reused")
        outcome.candidate = candidate.ref

        stored = _stored_gate(bot, candidate)
        if stored is None:
            with timer("evaluate"):
                verdict = _verdict(bot, candidate.ref, active.ref, say)
            with timer("gate"):
                stored = _store(bot, verdict, candidate)
        outcome.gate = stored
        if not stored["passed"]:
            failed = ", ".join(failed_rules(stored))
            say("gate", f"{candidate.ref} stays a candidate: failed {failed}")
            outcome.status = "rejected"
            return outcome
        with timer("promote"), AdapterRegistry(bot.database, bot.adapters_dir) as registry:
            # The watch first: killed between the two, the next run promotes the same
            # candidate and watches it again; the other way round, it would serve unwatched.
            with PromotionWatch(bot.database, settings) as watch:
                watch.start(candidate.ref, active.ref, job_id)
            registry.promote(candidate.name, candidate.version)
            say("promote", f"{candidate.ref} is now active (was {active.ref})")
        outcome.status = "promoted"
        return outcome


class _StageTimer:
    def __init__(self, seconds: dict[str, float], say: Report) -> None:
        self.seconds = seconds
        self.say = say

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        self.say(stage, "started")
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - started


@contextlib.contextmanager
def _only_run(bot: Bot) -> Iterator[None]:
    """Hold the bot's retrain lock (released by the kernel if this process dies)."""
    path = bot.state_dir / "retrain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise BusyError(
                f"a retrain of this bot is already running (pid {holder})", retry_after=600
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _active_version(bot: Bot, name: str | None) -> AdapterRecord:
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        if name is not None:
            return registry.get(AdapterRef(name))
        active = [record for record in registry.list() if record.status == "active"]
    if len(active) != 1:
        names = ", ".join(str(record.ref) for record in active) or "none"
        raise InvalidInputError(
            f"retrain needs one adapter with an active version to improve on (active: {names})",
            hint="name it with --name (or [retrain] adapter), or promote one first",
            param="name",
        )
    return active[0]


def _lineage(bot: Bot, active: AdapterRecord) -> dict[str, Any]:
    """What the active version was trained on: the log snapshots of its lineage and the
    time of the newest answer in them (its creation time if it learnt from no log)."""
    dataset = active.manifest.get("dataset")
    if dataset:
        manifest = read_snapshot(bot.datasets_dir, dataset).manifest
        return {"logs": manifest["logs"], "until": manifest["until"]}
    return {"logs": [], "until": active.created_at}


def _training_set(
    bot: Bot, active: AdapterRecord, lineage: dict[str, Any], new: Snapshot
) -> Snapshot:
    """One snapshot of everything the candidate trains on, in the serving prompt: the
    replay file with its sources retrieved now, then each log snapshot of the lineage."""
    settings = bot.config.retrain
    replay_path = bot.root / settings.replay
    replay = read_dataset(replay_path)
    if replay.problems:
        raise InvalidInputError(
            f"the replay data has problems: {replay.problems[0]}",
            hint=f"see `hybrid data lint {settings.replay}`",
        )
    retriever = HybridRetriever.for_bot(bot, embedder_for_bot(bot))
    top_k, system_prompt = bot.config.retrieval.top_k, bot.config.bot.system_prompt
    records = [
        with_retrieval(example, retriever, system_prompt=system_prompt, top_k=top_k).to_openai()
        for example in replay.examples
    ]
    logs = [*lineage["logs"], new.id]
    for snapshot_id in logs:
        snapshot = read_snapshot(bot.datasets_dir, snapshot_id)
        records += [json.loads(line) for line in snapshot.data_file.read_text().splitlines()]
    manifest = {
        "source": "retrain",
        "replay": settings.replay,
        "replay_examples": len(replay.examples),
        "index_version": retriever.version(),
        "logs": logs,
        "until": new.manifest["until"],
        "parent": str(active.ref),
    }
    return write_snapshot(bot.datasets_dir, records, manifest)


def _lint(bot: Bot, data: Snapshot) -> None:
    tokenizer = load_tokenizer(bot.config.models.base, base_dir=bot.root, models_dir=bot.models_dir)
    report = lint_for_training(
        data.data_file,
        eval_file=None,
        tokenizer=tokenizer,
        settings=bot.config.training,
        system_prompt=bot.config.bot.system_prompt,
    )
    if not report.ok:
        first = "\n  ".join(str(problem) for problem in report.errors[:5])
        raise InvalidInputError(
            f"the training set {data.id} has {len(report.errors)} error(s):\n  {first}",
            hint=f"see `hybrid data lint {data.data_file}`",
        )


def _earlier_version(bot: Bot, name: str, dataset: str) -> AdapterRecord | None:
    """The newest version trained on `dataset`: by a run killed after training, or one
    the gate rejected (the same data would give the same verdict)."""
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        trained = [r for r in registry.list(name) if r.manifest.get("dataset") == dataset]
    return trained[-1] if trained else None


def _train(bot: Bot, active: AdapterRecord, data: Snapshot, say: Report) -> AdapterRecord:
    request = TrainRequest(
        train_file=data.data_file,
        name=active.name,
        resume=can_resume(bot, active.name),
        dataset=data.id,
        parent=str(active.ref),
        start_from=_warm_start(bot, active, say),
    )

    def progress(update: Any) -> None:
        if update.epoch_done or update.step % 10 == 0:
            say("train", f"step {update.step}/{update.total_steps}, loss {update.loss:.3f}")

    try:
        return train_adapter(bot, request, progress).adapter
    except ConflictError:  # an interrupted run on other data: start this one afresh
        if not request.resume:
            raise
        discard_run(bot, active.name)
        say("train", "an unfinished run on other data was discarded")
        return train_adapter(bot, replace(request, resume=False), progress).adapter


def _warm_start(bot: Bot, active: AdapterRecord, say: Report) -> AdapterRef | None:
    """The version the candidate starts from: the active one, unless warm starts are off
    or its LoRA layers do not fit today's [training] settings."""
    if not bot.config.retrain.warm_start:
        return None
    conflict = start_conflict(bot, active)
    if conflict:
        say("train", f"starting from the base model: {active.ref} cannot be continued ({conflict})")
        return None
    say("train", f"starting from {active.ref}'s weights")
    return active.ref


def judge_against_active(bot: Bot, candidate: AdapterRef, say: Report) -> dict[str, Any]:
    """Judge `candidate` against its adapter's active version under the gate and store
    the report with it, as a retrain does, but promote nothing (the console's
    comparison of a version trained some other way). Returns the stored report."""
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        record = registry.get(candidate)
        active = registry.get(AdapterRef(candidate.name))
    if record.version == active.version:
        raise ConflictError(f"{record.ref} is the active version: nothing to compare it with")
    return _store(bot, _verdict(bot, record.ref, active.ref, say), record)


def _verdict(bot: Bot, candidate: AdapterRef, active: AdapterRef, say: Report) -> Verdict:
    golden = read_golden(bot.root / bot.config.retrain.golden)

    def progress(answered: int, total: int) -> None:
        if answered % 20 == 0 or answered == total:
            say("evaluate", f"{answered}/{total} answers")

    return judge_candidate_against(bot, candidate, active, golden, progress)


def _store(bot: Bot, verdict: Verdict, candidate: AdapterRecord) -> dict[str, Any]:
    """The gate report, stored with the candidate (HTML first: gate.json marks it done)."""
    stored = {**verdict.to_dict(), "judged_at": time.time(), "judged_by": _gate_settings(bot)}
    verdict.write_html(
        candidate.path / "gate.html", f"{bot.config.bot.name}: gate for {candidate.ref}"
    )
    write_file_atomically(
        candidate.path / GATE_FILE, (json.dumps(stored, indent=2) + "\n").encode()
    )
    return stored


def read_gate_report(version: AdapterRecord) -> dict[str, Any] | None:
    """The gate's verdict stored with `version` (by a retrain or a comparison), if any."""
    try:
        return json.loads((version.path / GATE_FILE).read_text())
    except (OSError, ValueError):
        return None


def failed_rules(gate: dict[str, Any]) -> list[str]:
    """The names of the rules a stored gate report says failed."""
    return [rule["name"] for rule in gate["rules"] if not rule["passed"]]


def _stored_gate(bot: Bot, candidate: AdapterRecord) -> dict[str, Any] | None:
    """The candidate's stored verdict, if it was reached under today's gate settings."""
    stored = read_gate_report(candidate)
    return stored if stored and stored.get("judged_by") == _gate_settings(bot) else None


def _gate_settings(bot: Bot) -> dict[str, Any]:
    """What a verdict depends on besides the two versions: the rules' revision, the
    gate's thresholds, the golden set's path and the judge."""
    settings = msgspec.to_builtins(bot.config.retrain)
    judge = bot.config.evaluation.judge
    return {
        "rules": RULES_REVISION,
        **{k: v for k, v in settings.items() if k.endswith("_tolerance") or k == "min_win_rate"},
        "golden": settings["golden"],
        "judge": msgspec.to_builtins(judge) if judge else None,
    }
