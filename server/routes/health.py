"""GET /healthz: 200 once the model is loaded and the generator answers; 503 while
loading, after a failure, or while the generator (vLLM) is unreachable, saying why."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from server.schemas import Health
from server.state import ServerState


@get("/healthz", sync_to_thread=True)
def healthz(server: NamedDependency[ServerState]) -> Response[Health]:
    if server.status != "ok":
        return Response(Health(status=server.status, detail=server.detail), status_code=503)
    problem = server.generator_problem()
    if problem is not None:
        return Response(Health(status="unavailable", detail=problem), status_code=503)
    return Response(Health(status="ok"), status_code=200)


ROUTES = [healthz]
