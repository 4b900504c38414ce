"""The adapters (/admin/adapters): every version with its status and lineage (dataset
snapshot, parent, hyperparameters, data hash), its loss curve over the earlier runs',
the reports stored with it, and its comparison with the active version (the questions
it lost first); promote and roll back, a promotion the gate rejected only when the
operator confirms it, having seen why."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.response import File, Redirect, Template

from hybrid.errors import ConflictError, NotFoundError
from hybrid.types import AdapterRef
from server.console.plots import loss_plot
from server.console.rendering import FORM, FORM_BODY, done, page
from server.flywheel.retrain import failed_rules, read_gate_report
from server.jobs import JobSpec
from server.routes.params import IdPath, VersionPath
from server.state import ServerState
from training import AdapterRecord

# What a version's folder may show in the browser (its reports, its loss curve).
VIEWABLE = {".html": "text/html", ".png": "image/png", ".json": "application/json"}


@dataclass
class Promotion:
    confirm: str = ""  # a checkbox: "on" when the operator overrides the gate


@get("/adapters", sync_to_thread=True)
def adapters(server: NamedDependency[ServerState]) -> Template:
    records = server.registry().list()
    names = sorted({record.name for record in records})
    return page(
        "adapters.html.j2",
        "Adapters",
        section="adapters",
        names=names,
        records=records,
        gates={str(r.ref): read_gate_report(r) for r in records},
    )


@get("/adapters/{name:str}/{version:int}", sync_to_thread=True)
def adapter(name: IdPath, version: VersionPath, server: NamedDependency[ServerState]) -> Template:
    registry = server.registry()
    record = registry.get(AdapterRef(name, version))
    family = registry.list(name)
    active = next((r for r in family if r.status == "active"), None)
    gate = read_gate_report(record)
    comparison = gate.get("comparison") if gate else None
    if comparison:  # regressions first: lost, then tied, then won
        order = {"loss": 0, "tie": 1, "win": 2}
        comparison = {
            **comparison,
            "questions": sorted(comparison["questions"], key=lambda q: order[q["outcome"]]),
        }
    curves = [
        (str(r.ref), _losses(r), r.version == version) for r in family if r.version <= version
    ]
    return page(
        "adapter.html.j2",
        str(record.ref),
        section="adapters",
        record=record,
        active=active,
        gate=gate,
        comparison=comparison,
        compared_with_active=bool(gate and active and gate.get("active") == str(active.ref)),
        plot=loss_plot(curves),
        files=sorted(p.name for p in record.path.iterdir() if p.suffix in VIEWABLE),
        lineage=_lineage(record),
    )


@get("/adapters/{name:str}/{version:int}/files/{file_name:str}", sync_to_thread=True)
def adapter_file(
    name: IdPath, version: VersionPath, file_name: IdPath, server: NamedDependency[ServerState]
) -> File:
    record = server.registry().get(AdapterRef(name, version))
    path = record.path / Path(file_name).name
    if path.suffix not in VIEWABLE or not path.is_file():
        raise NotFoundError(f"{record.ref} has no report {file_name!r}", param="file_name")
    return File(path, media_type=VIEWABLE[path.suffix], content_disposition_type="inline")


@post("/adapters/{name:str}/{version:int}/promote", sync_to_thread=True, opt=FORM)
def promote(
    name: IdPath,
    version: VersionPath,
    server: NamedDependency[ServerState],
    data: Annotated[Promotion, FORM_BODY],
) -> Redirect:
    record = server.registry().get(AdapterRef(name, version))
    gate = read_gate_report(record)
    if gate and not gate.get("passed") and data.confirm != "on":
        failed = ", ".join(failed_rules(gate))
        raise ConflictError(
            f"the gate rejected {record.ref} ({failed}); confirm to promote it anyway",
            param="confirm",
        )
    promoted = server.registry().promote(name, version)
    server.adapters_changed()
    return done(f"/admin/adapters/{name}/{version}", f"{promoted.ref} is now active.")


@post("/adapters/{name:str}/{version:int}/compare", sync_to_thread=True, opt=FORM)
def compare(name: IdPath, version: VersionPath, server: NamedDependency[ServerState]) -> Redirect:
    """Queue the gate's verdict on this version against the active one (a job: it
    answers the golden set and the forgetting probe with both)."""
    record = server.registry().get(AdapterRef(name, version))
    spec = JobSpec(
        model=server.base_model_id,
        training_file="golden-set",
        validation_file=None,
        adapter=name,
        suffix=None,
        seed=server.bot.config.training.seed,
        metadata={"kind": "compare"},
        kind="compare",
        candidate=str(record.ref),
    )
    # A second click while it runs finds the same job (the store's retry window).
    job, created = server.jobs().create(spec, f"compare:{record.ref}")
    if created:
        server.job_runner.notify()
    return done(f"/admin/jobs/{job.id}", f"Comparing {record.ref} with the active version.")


@post("/adapters/{name:str}/rollback", sync_to_thread=True, opt=FORM)
def rollback(name: IdPath, server: NamedDependency[ServerState]) -> Redirect:
    record = server.registry().rollback(name)
    server.adapters_changed()
    return done(f"/admin/adapters/{name}/{record.version}", f"Rolled back: {record.ref} is active.")


def _losses(record: AdapterRecord) -> list[tuple[float, float]]:
    return [(step, loss) for step, loss in record.manifest.get("metrics", {}).get("train_loss", [])]


def _lineage(record: AdapterRecord) -> list[tuple[str, Any]]:
    manifest = record.manifest
    return [
        ("Dataset snapshot", manifest.get("dataset")),
        ("Parent", manifest.get("parent")),
        ("Training file", manifest.get("train_file")),
        ("Data hash", manifest.get("data_hash")),
        ("Base model", manifest.get("base_model")),
        ("Index version trained with", manifest.get("index_version")),
        ("QLoRA", manifest.get("qlora")),
        ("Steps", manifest.get("metrics", {}).get("steps")),
        ("Final training loss", manifest.get("metrics", {}).get("final_train_loss")),
        ("Best eval loss", manifest.get("metrics", {}).get("best_eval_loss")),
    ]


ROUTES = [adapters, adapter, adapter_file, promote, compare, rollback]
