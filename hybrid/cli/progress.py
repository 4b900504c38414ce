"""Progress of long work, on a terminal and in a log alike: a live bar when stderr is a
terminal; otherwise (a log file, CI, `make run > log`) one plain line every
`log_every` seconds and one at the end, with the rate and the time left."""

from __future__ import annotations

import re
import time
from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from hybrid.cli.output import stderr

LOG_EVERY_SECONDS = 30.0


class ProgressReport:
    """`update(done, total, **values)` after each unit of work. `fields` are shown after
    the count, as templates of those values: ("loss {loss}", "{rate} tokens/s")."""

    def __init__(
        self,
        description: str,
        *,
        fields: tuple[str, ...] = (),
        log_every: float = LOG_EVERY_SECONDS,
    ) -> None:
        self.description = description
        self.fields = fields
        self._names = [name for field in fields for name in re.findall(r"{(\w+)}", field)]
        self.log_every = log_every
        self._bar: Progress | None = None
        self._started = 0.0
        self._logged_at = 0.0
        self._last = ""

    def __enter__(self) -> ProgressReport:
        self._started = self._logged_at = time.monotonic()
        if stderr.is_terminal:
            columns = ["{task.description}", BarColumn(), MofNCompleteColumn()]
            columns += [re.sub(r"{(\w+)}", r"{task.fields[\1]}", f) for f in self.fields]
            self._bar = Progress(*columns, TimeRemainingColumn(), console=stderr, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(
                self.description, total=None, **dict.fromkeys(self._names, "…")
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self._last and kind is None:
            stderr.print(self._last)  # the final state, if the last line logged was older

    def update(
        self, done: int, total: int | None, *, description: str | None = None, **values: str
    ) -> None:
        description = description or self.description
        if self._bar is not None:
            self._bar.update(
                self._task, completed=done, total=total, description=description, **values
            )
            return
        now = time.monotonic()
        self._last = self._line(description, done, total, values, now - self._started)
        if now - self._logged_at >= self.log_every:
            stderr.print(self._last)
            self._logged_at, self._last = now, ""

    def _line(
        self, description: str, done: int, total: int | None, values: dict[str, str], elapsed: float
    ) -> str:
        parts = [f"{description}: {done}/{total}" if total else f"{description}: {done}"]
        parts += [field.format(**values) for field in self.fields if values]
        if total and done:
            parts.append(f"{_duration(elapsed * (total - done) / done)} left")
        return ", ".join(parts)


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
