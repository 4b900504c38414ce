from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

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
