"""GET /healthz: 200 once the model is loaded and the generator answers (naming the vLLM
replicas that do not, if some do); 503 while loading, after a failure, or while no
generator (vLLM replica) is reachable, saying why."""

from __future__ import annotations

from litestar import Response, get
from litestar.di import NamedDependency

from server.schemas import Health
from server.state import ServerState


@get("/healthz", sync_to_thread=True)
def healthz(server: NamedDependency[ServerState]) -> Response[Health]:
    if server.status != "ok":
        return Response(Health(status=server.status, detail=server.detail), status_code=503)
    reachability = server.generator_reachability()
    if not reachability.answering:
        detail = reachability.detail
        return Response(Health(status="unavailable", detail=detail), status_code=503)
    return Response(Health(status="ok", detail=reachability.detail), status_code=200)


ROUTES = [healthz]
