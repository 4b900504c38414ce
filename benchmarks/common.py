from __future__ import annotations

import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import httpx
import msgspec

from hybrid.bot import Bot


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        return f"{self.name}: {self.value} {self.unit}" + (f"  ({self.note})" if self.note else "")


def with_settings(bot: Bot, section: str, **changes: object) -> Bot:
    """The bot with some settings of one hybrid.toml section changed, in memory only."""
    changed = msgspec.structs.replace(getattr(bot.config, section), **changes)
    return Bot(bot.root, msgspec.structs.replace(bot.config, **{section: changed}))


def median_seconds(action: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of `action` over `repeats` runs, after `warmup` untimed runs."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@contextlib.contextmanager
def hybrid_serve(bot: Bot) -> Iterator[str]:
    """`hybrid serve` on a free loopback port, in its own process; its URL once ready."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "hybrid", "-C", str(bot.root), "serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hybrid serve did not become ready")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False
