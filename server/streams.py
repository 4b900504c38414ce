"""The callers' side of a generation: the events a request's tokens arrive as, and the
stream that turns them into text deltas (read with `for`, or `async for` on an event
loop)."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from hybrid.types import Generation


class AsyncEvents:
    """A request's events for a consumer on an asyncio loop: the engine's threads hand
    each one to the loop, so no thread waits per stream."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()

    def put(self, event: object) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def get(self) -> object:
        return await self.queue.get()


def new_events(asynchronous: bool) -> Any:
    """Where the engine puts a request's text deltas, its Generation or its error."""
    return AsyncEvents() if asynchronous else queue.SimpleQueue()


class DeltaStream:
    """Text deltas, read with `for` (next_delta) or `async for` (anext_delta); both
    return None at the end."""

    def next_delta(self, timeout: float | None = None) -> str | None:
        raise NotImplementedError

    async def anext_delta(self) -> str | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        while (delta := self.next_delta()) is not None:
            yield delta

    async def __aiter__(self) -> AsyncIterator[str]:
        while (delta := await self.anext_delta()) is not None:
            yield delta


def finished_stream(text: str, asynchronous: bool) -> TokenStream:
    """A stream that is already over: `text` as its one delta, with no tokens generated
    (a hand-over answered without the model)."""
    events = new_events(asynchronous)
    events.put(text)
    events.put(Generation(text=text, prompt_tokens=0, completion_tokens=0, finish_reason="stop"))
    return TokenStream(events, threading.Event())


class TokenStream(DeltaStream):
    """One request's output: iterate for text deltas (`async for` when submitted with
    asynchronous=True); `result` is the Generation once the iteration ends. `cancel()`
    (e.g. the client went away) frees its batch row at the next step."""

    def __init__(self, events: Any, cancelled: threading.Event) -> None:
        self._events = events
        self._cancelled = cancelled
        self.result: Generation | None = None

    def next_delta(self, timeout: float | None = None) -> str | None:
        """The next piece of text, or None at the end (then `result` is set)."""
        if self.result is not None:
            return None
        return self._take(self._events.get(timeout=timeout))

    async def anext_delta(self) -> str | None:
        if self.result is not None:
            return None
        return self._take(await self._events.get())

    def _take(self, event: object) -> str | None:
        if isinstance(event, BaseException):
            raise event
        if isinstance(event, Generation):
            self.result = event
            return None
        assert isinstance(event, str)
        return event

    def cancel(self) -> None:
        self._cancelled.set()

    def generation(self) -> Generation:
        for _ in self:
            pass
        assert self.result is not None
        return self.result
