"""GET /metrics in Prometheus' text format: requests and their latency by route and
status, tokens in and out, and, read at scrape time, the generation queue, the index
version and the active adapters."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from litestar.types import ASGIApp, Receive, Scope, Send

access_log = logging.getLogger("hybrid.access")

# Request latency histogram bounds, in seconds.
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self._latency: dict[str, list[float]] = {}  # route -> bucket counts + sum + count
        self._tokens = {"prompt": 0, "completion": 0}
        self._prompt_building = [0.0, 0]  # seconds, count

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self._requests[(method, route, status)] += 1
            counts = self._latency.setdefault(route, [0.0] * (len(BUCKETS) + 2))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-2] += seconds
            counts[-1] += 1

    def observe_prompt_building(self, seconds: float) -> None:
        """Time a chat request spent retrieving its sources and building its prompt."""
        with self._lock:
            self._prompt_building[0] += seconds
            self._prompt_building[1] += 1

    def count_tokens(self, prompt: int, completion: int) -> None:
        with self._lock:
            self._tokens["prompt"] += prompt
            self._tokens["completion"] += completion

    def render(self, gauges: dict[str, float], labelled: dict[str, tuple[str, list[str]]]) -> str:
        """The exposition text; `gauges` are read by the caller at scrape time, and each
        `labelled` gauge (name: (label, values)) is 1 for each value (e.g. the active
        adapters)."""
        lines = [
            "# HELP hybrid_requests_total HTTP requests by method, route and status.",
            "# TYPE hybrid_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), count in sorted(self._requests.items()):
                labels = f'method="{method}",route="{route}",status="{status}"'
                lines.append(f"hybrid_requests_total{{{labels}}} {count}")
            lines += [
                "# HELP hybrid_request_seconds HTTP request latency (streams: until the end).",
                "# TYPE hybrid_request_seconds histogram",
            ]
            for route, counts in sorted(self._latency.items()):
                for bound, count in zip(BUCKETS, counts, strict=False):
                    lines.append(
                        f'hybrid_request_seconds_bucket{{route="{route}",le="{bound}"}} {count:g}'
                    )
                lines.append(
                    f'hybrid_request_seconds_bucket{{route="{route}",le="+Inf"}} {counts[-1]:g}'
                )
                lines.append(f'hybrid_request_seconds_sum{{route="{route}"}} {counts[-2]:.6f}')
                lines.append(f'hybrid_request_seconds_count{{route="{route}"}} {counts[-1]:g}')
            lines += [
                "# HELP hybrid_tokens_total Tokens of answered prompts and of the answers.",
                "# TYPE hybrid_tokens_total counter",
            ]
            for kind, count in self._tokens.items():
                lines.append(f'hybrid_tokens_total{{kind="{kind}"}} {count}')
            seconds, count = self._prompt_building
            lines += [
                "# HELP hybrid_prompt_building_seconds Retrieval and prompt building per chat.",
                "# TYPE hybrid_prompt_building_seconds summary",
                f"hybrid_prompt_building_seconds_sum {seconds:.6f}",
                f"hybrid_prompt_building_seconds_count {count}",
            ]
        for name, value in gauges.items():
            lines += [f"# TYPE {name} gauge", f"{name} {value:g}"]
        for name, (label, values) in labelled.items():
            lines.append(f"# TYPE {name} gauge")
            lines += [f'{name}{{{label}="{value}"}} 1' for value in values]
        return "\n".join(lines) + "\n"


def note_model(scope: Scope, model: str) -> None:
    """Name the model a request asked for, for its access log line."""
    scope.setdefault("state", {})["model"] = model


def observe_requests(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Counts every HTTP request by its route template (not its raw path, so ids do not
    multiply the series) and status, times it to its last byte, and logs one access line
    for it: method, path, status, milliseconds and, for a chat, the model."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = 500

            async def sending(message) -> None:  # type: ignore[no-untyped-def]
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                handler = scope.get("route_handler")
                route = next(iter(handler.paths)) if handler is not None else "unmatched"
                seconds = time.perf_counter() - started
                metrics.observe_request(scope["method"], route, status, seconds)
                model = scope.get("state", {}).get("model")
                access_log.info(
                    "%s %s %d %.0f ms%s",
                    scope["method"],
                    scope["path"],
                    status,
                    seconds * 1000,
                    f" model={model}" if model else "",
                )

        return wrapped

    return middleware
