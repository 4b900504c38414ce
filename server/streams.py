"""The callers' side of a generation: the stream a request's events arrive on, and its
one adaptation for asyncio, at the HTTP edge.

A stream is synchronous (read with `for` or next_delta) whoever generates: the local
engine's threads put events on its queue; another generator may read its source in
next_delta itself. The HTTP routes read it through `async_deltas`, which waits in a
worker thread for the first delta and takes every delta ready by then in one go."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

import anyio.to_thread

from hybrid.types import Generation

# A text delta, the final Generation, or the error that ended the request.
Event = str | Generation | BaseException


class Deltas(Protocol):
    def next_delta(self, timeout: float | None = None) -> str | None: ...

    def ready(self) -> bool: ...


class DeltaStream:
    """Text deltas, read with `for`; next_delta returns None at the end."""

    def next_delta(self, timeout: float | None = None) -> str | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        while (delta := self.next_delta()) is not None:
            yield delta


class TokenStream(DeltaStream):
    """One request's output, fed by a producer thread through `put`; `result` is the
    Generation once the iteration ends. `cancel()` (e.g. the client went away) sets
    `cancelled`, which the producer checks."""

    def __init__(self) -> None:
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.cancelled = threading.Event()
        self.result: Generation | None = None

    def put(self, event: Event) -> None:
        self._events.put(event)

    def next_delta(self, timeout: float | None = None) -> str | None:
        """The next piece of text, or None at the end (then `result` is set)."""
        if self.result is not None:
            return None
        event = self._events.get(timeout=timeout)
        if isinstance(event, BaseException):
            raise event
        if isinstance(event, Generation):
            self.result = event
            return None
        return event

    def ready(self) -> bool:
        """Whether next_delta would return without waiting."""
        return self.result is not None or not self._events.empty()

    def cancel(self) -> None:
        self.cancelled.set()


def finished_stream(text: str) -> TokenStream:
    """A stream that is already over: `text` as its one delta, with no tokens generated
    (a hand-over answered without the model)."""
    stream = TokenStream()
    stream.put(text)
    stream.put(Generation(text=text, prompt_tokens=0, completion_tokens=0, finish_reason="stop"))
    return stream


async def async_deltas(stream: Deltas) -> AsyncIterator[str]:
    """`stream`'s deltas on an event loop. Each wait runs in a worker thread, which the
    event loop may abandon (the client left); the caller then cancels the stream, which
    ends that wait."""

    def take() -> list[str | None]:
        deltas = [stream.next_delta()]
        while deltas[-1] is not None and stream.ready():
            deltas.append(stream.next_delta())
        return deltas

    while True:
        for delta in await anyio.to_thread.run_sync(take, abandon_on_cancel=True):
            if delta is None:
                return
            yield delta
