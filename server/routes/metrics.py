"""GET /metrics: Prometheus text (see server/metrics.py)."""

from __future__ import annotations

from litestar import get
from litestar.di import NamedDependency

from server.auth import ADMIN
from server.engine import GenerationEngine
from server.state import ServerState

# Prometheus' text format; Litestar adds the charset.
PROMETHEUS = "text/plain; version=0.0.4"


@get("/metrics", sync_to_thread=True, guards=ADMIN, media_type=PROMETHEUS)
def metrics(server: NamedDependency[ServerState]) -> str:
    retriever = server.retriever
    # vLLM reports its own queue on its own /metrics.
    engine = server.generator if isinstance(server.generator, GenerationEngine) else None
    version = retriever.version() if retriever is not None else None
    active = [str(r.ref) for r in server.registry().list() if r.status == "active"]
    text = server.metrics.render(
        gauges={
            "hybrid_ready": 1 if server.status == "ok" else 0,
            "hybrid_queue_depth": engine.queue_depth if engine else 0,
            "hybrid_running_requests": engine.running if engine else 0,
            "hybrid_index_version": version or 0,
            "hybrid_loaded_adapters": len(engine.loaded_adapters()) if engine else 0,
            "hybrid_adapter_auto_rollbacks": server.promotions().rollbacks(),
        },
        labelled={"hybrid_active_adapter": ("adapter", active)},
    )
    return text


ROUTES = [metrics]
