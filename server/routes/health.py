"""GET /healthz: 200 once the model is loaded, 503 while loading or after a failure."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from server.schemas import Health
from server.state import ServerState


@get("/healthz", sync_to_thread=False)
def healthz(server: NamedDependency[ServerState]) -> Response[Health]:
    status = 200 if server.status == "ok" else 503
    return Response(Health(status=server.status, detail=server.detail), status_code=status)


ROUTES = [healthz]
