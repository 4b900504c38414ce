"""The adapter registry over HTTP: GET /v1/adapters, POST /v1/adapters/{name}/promote
and /rollback. A promotion switches statuses in one transaction; the next request for
`name` resolves to the new version, loaded under its own `name@version`."""

from __future__ import annotations

from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from server.auth import ADMIN, CHAT
from server.routes.params import IdPath
from server.schemas import AdapterInfo, AdapterList, PromoteRequest
from server.state import ServerState
from training import AdapterRecord


@get("/v1/adapters", sync_to_thread=False, guards=CHAT)
def list_adapters(server: NamedDependency[ServerState]) -> AdapterList:
    return AdapterList(data=[_info(record) for record in server.registry().list()])


@post("/v1/adapters/{name:str}/promote", status_code=200, sync_to_thread=True, guards=ADMIN)
def promote(
    name: IdPath,
    server: NamedDependency[ServerState],
    data: JSONBody[PromoteRequest | None] = None,
) -> AdapterInfo:
    version = data.version if data is not None else None
    record = server.registry().promote(name, version)
    server.adapters_changed()
    return _info(record)


@post("/v1/adapters/{name:str}/rollback", status_code=200, sync_to_thread=True, guards=ADMIN)
def rollback(name: IdPath, server: NamedDependency[ServerState]) -> AdapterInfo:
    record = server.registry().rollback(name)
    server.adapters_changed()
    return _info(record)


def _info(record: AdapterRecord) -> AdapterInfo:
    metrics = record.manifest.get("metrics", {})
    return AdapterInfo(
        id=str(record.ref),
        name=record.name,
        version=record.version,
        status=record.status,
        created_at=int(record.created_at),
        promoted_at=int(record.promoted_at) if record.promoted_at else None,
        metrics={k: v for k, v in metrics.items() if k not in ("train_loss", "eval_loss")},
    )


ROUTES = [list_adapters, promote, rollback]
