"""The generation engine: one base model in memory, many adapters, continuous batching.

One worker thread owns the model. Callers submit requests and read their tokens from a
stream; between decoding steps the worker admits waiting requests (prefilling their
prompts and stacking their KV caches onto the batch) and retires finished, cancelled or
timed-out ones, so a request never waits for another to finish. Rows of one batch may
name different adapters (server/adapter_set.py).

Adapters are loaded by the worker itself, between steps, so loading never races a
forward pass; each is loaded under its `name@version`, so a promoted version is a new
identity and nothing loaded for the old one is reused. Waiting requests are bounded:
past `max_waiting`, submit raises EngineBusyError (HTTP 429).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hybrid.config import GenerationSettings
from hybrid.errors import HybridError
from hybrid.types import AdapterRef, Generation, Message
from server.adapter_set import BASE, AdapterSet
from server.kv_batch import KVBatch, PrefixCache
from server.sampling import TokenSampler, whitespace_token_ids
from training import AdapterRecord, BaseModel, render_chat

AdapterLookup = Callable[[AdapterRef], AdapterRecord]


class EngineBusyError(HybridError):
    code = "rate_limit_exceeded"
    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, hint=f"retry in {retry_after} s")
        self.retry_after = retry_after


class GenerationTimeoutError(HybridError):
    code = "timeout"
    status = 504


@dataclass
class _Request:
    prompt_ids: list[int]
    max_tokens: int
    stop: tuple[str, ...]
    adapter: AdapterRef | None  # resolved: name@version
    adapter_path: str | None
    deadline: float | None
    sampler: TokenSampler
    prefix_length: int = 0  # leading prompt tokens that other requests share (see PrefixCache)
    events: Any = field(default_factory=queue.SimpleQueue)  # or an _AsyncEvents
    cancelled: threading.Event = field(default_factory=threading.Event)
    answer_ids: list[int] = field(default_factory=list)  # the answer's tokens (no end token)
    sampled: int = 0  # tokens generated, an end token included
    sent: int = 0  # characters of the answer already streamed
    final_text: str | None = None

    @property
    def key(self) -> str:
        return str(self.adapter) if self.adapter is not None else BASE


class _AsyncEvents:
    """A request's events for a consumer on an asyncio loop: the worker thread hands
    each one to the loop, so no thread waits per stream."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()

    def put(self, event: object) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, event)

    async def get(self) -> object:
        return await self.queue.get()


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


class TokenStream(DeltaStream):
    """One request's output: iterate for text deltas (`async for` when submitted with
    asynchronous=True); `result` is the Generation once the iteration ends. `cancel()`
    (e.g. the client went away) frees its batch row at the next step."""

    def __init__(self, request: _Request) -> None:
        self._request = request
        self.result: Generation | None = None

    def next_delta(self, timeout: float | None = None) -> str | None:
        """The next piece of text, or None at the end (then `result` is set)."""
        if self.result is not None:
            return None
        return self._take(self._request.events.get(timeout=timeout))

    async def anext_delta(self) -> str | None:
        if self.result is not None:
            return None
        return self._take(await self._request.events.get())

    def _take(self, event: object) -> str | None:
        if isinstance(event, BaseException):
            raise event
        if isinstance(event, Generation):
            self.result = event
            return None
        assert isinstance(event, str)
        return event

    def cancel(self) -> None:
        self._request.cancelled.set()

    def generation(self) -> Generation:
        for _ in self:
            pass
        assert self.result is not None
        return self.result


class GenerationEngine:
    def __init__(
        self,
        base: BaseModel,
        adapters: AdapterLookup | None = None,
        *,
        max_batch: int = 16,
        max_waiting: int = 64,
    ) -> None:
        self.base = base
        self.context_window = base.context_window
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self._lookup = adapters
        self._stop_ids = _stop_token_ids(base)
        self._whitespace_ids = whitespace_token_ids(base.tokenizer)
        self._adapters = AdapterSet(base.model)
        self._waiting: collections.deque[_Request] = collections.deque()
        self._running: list[_Request] = []
        self._batch = KVBatch()
        self._prefixes = PrefixCache()
        self._wake = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._work, name="generation", daemon=True)
        self._worker.start()
        # A daemon thread still inside torch when the interpreter finalises aborts the
        # process ("terminate called without an active exception"): stop it first.
        atexit.register(self.close)

    # -- the callers' side ------------------------------------------------------------

    def prompt_tokens(self, messages: Sequence[Message]) -> int:
        return len(self._prompt_ids(messages))

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def loaded_adapters(self) -> list[str]:
        return sorted(self._adapters.loaded)

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        adapter: AdapterRef | None = None,
    ) -> Generation:
        """The Generator protocol: the whole answer at once."""
        return self.submit(messages, settings, adapter).generation()

    def submit(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        adapter: AdapterRef | None = None,
        *,
        stop: Sequence[str] = (),
        timeout: float | None = None,
        asynchronous: bool = False,
    ) -> TokenStream:
        """Queue a request; its tokens arrive on the returned stream (read it with
        `async for` if `asynchronous`, which must be called on the event loop). Raises at
        once for an unknown adapter, a prompt longer than the context, or a full queue."""
        record = self._resolve(adapter)
        prompt_ids = self._prompt_ids(messages)
        room = self.context_window - len(prompt_ids)
        if room < 1:
            raise HybridError(
                f"the prompt takes {len(prompt_ids)} tokens; the model's context holds "
                f"{self.context_window}",
                hint="ask a shorter question",
            )
        request = _Request(
            prompt_ids=prompt_ids,
            max_tokens=min(settings.max_new_tokens, room),
            stop=tuple(s for s in stop if s),
            adapter=record.ref if record else None,
            adapter_path=str(record.path) if record else None,
            deadline=time.monotonic() + timeout if timeout else None,
            sampler=TokenSampler(settings, self._whitespace_ids),
            prefix_length=self._shared_prefix_length(messages, prompt_ids),
            events=_AsyncEvents() if asynchronous else queue.SimpleQueue(),
        )
        with self._wake:
            if self._closed:
                raise HybridError("the generation engine is shut down")
            if len(self._waiting) >= self.max_waiting:
                raise EngineBusyError(
                    f"{len(self._waiting)} requests are already waiting", retry_after=1
                )
            self._waiting.append(request)
            self._wake.notify()
        return TokenStream(request)

    def close(self) -> None:
        """Stop the worker (waiting and running requests fail) and wait for it."""
        atexit.unregister(self.close)
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._worker.join()

    def _prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        return self._token_ids(messages, add_generation_prompt=True)

    def _token_ids(self, messages: Sequence[Message], *, add_generation_prompt: bool) -> list[int]:
        tokenizer = self.base.tokenizer
        prompt = render_chat(tokenizer, messages, add_generation_prompt=add_generation_prompt)
        return tokenizer(prompt, add_special_tokens=False).input_ids

    def _shared_prefix_length(self, messages: Sequence[Message], prompt_ids: list[int]) -> int:
        """How many leading prompt tokens are the system turn, which every request of a
        bot shares (0 without one, or if it does not tokenize the same on its own)."""
        if len(messages) < 2 or messages[0].role != "system":
            return 0
        system = self._token_ids(messages[:1], add_generation_prompt=False)
        return len(system) if prompt_ids[: len(system)] == system else 0

    def _resolve(self, adapter: AdapterRef | None) -> AdapterRecord | None:
        if adapter is None:
            return None
        if self._lookup is None:
            raise HybridError(f"adapter {adapter} requested, but this engine has no registry")
        return self._lookup(adapter)

    # -- the worker's side -------------------------------------------------------------

    def _work(self) -> None:
        import torch

        with torch.inference_mode():
            while True:
                admitted = self._admit()
                if admitted is None:
                    return
                try:
                    if admitted:
                        self._prefill(admitted)
                    if self._running:
                        self._step()
                except Exception as exc:  # a failed step fails its requests, not the engine
                    affected = {id(r): r for r in [*admitted, *self._running]}
                    for request in affected.values():
                        request.events.put(exc)
                    self._running, self._batch = [], KVBatch()

    def _admit(self) -> list[_Request] | None:
        """Waiting requests that fit in the batch (blocks while there is nothing to do);
        None once closed."""
        with self._wake:
            while not self._closed and not self._waiting and not self._running:
                self._wake.wait()
            if self._closed:
                for request in [*self._waiting, *self._running]:
                    request.events.put(HybridError("the generation engine shut down"))
                return None
            admitted = []
            while self._waiting and len(self._running) + len(admitted) < self.max_batch:
                request = self._waiting.popleft()
                if request.cancelled.is_set():
                    request.events.put(self._finish(request, "stop"))
                else:
                    admitted.append(request)
            return admitted

    def _prefill(self, requests: list[_Request]) -> None:
        """Run the new prompts, stack their caches onto the batch, and choose each one's
        first token. Prompts that start with the same shared prefix run together: the
        prefix's cache is copied in and only the rest (left-padded) is computed."""
        groups: dict[tuple[int, ...], list[_Request]] = {}
        for request in requests:
            if self._adapter_ready(request):
                shared = tuple(request.prompt_ids[: request.prefix_length])
                groups.setdefault(shared, []).append(request)
        for prefix, group in groups.items():
            self._prefill_group(prefix, group)

    def _prefill_group(self, prefix: tuple[int, ...], requests: list[_Request]) -> None:
        import torch

        keys = [r.key for r in requests]
        cache = None
        if prefix:

            def compute(key: str) -> Any:
                row = torch.tensor([prefix])
                positions = torch.arange(len(prefix)).unsqueeze(0)
                output = self._forward(row, torch.ones_like(row), positions, None, [key])
                return output.past_key_values

            cache = self._prefixes.batch(prefix, keys, compute)
        rests = [r.prompt_ids[len(prefix) :] for r in requests]
        width = max(len(rest) for rest in rests)
        pad = self.base.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(rest)) + rest for rest in rests])
        rest_mask = torch.tensor([[0] * (width - len(rest)) + [1] * len(rest) for rest in rests])
        positions = len(prefix) + (rest_mask.cumsum(dim=1) - 1).clamp(min=0)
        mask = torch.cat([rest_mask.new_ones(len(requests), len(prefix)), rest_mask], dim=1)
        # Logits for the last position only: the whole prompt's would cost a fifth of it.
        output = self._forward(ids, mask, positions, cache, keys, last_only=True)
        self._batch.add(output.past_key_values, mask)
        first_row = len(self._running)
        self._running += requests
        self._advance(requests, output.logits[:, -1, :].float(), first_row=first_row)

    def _step(self) -> None:
        """One token for every running request."""
        import torch

        last = torch.tensor([[r.answer_ids[-1]] for r in self._running])
        positions = self._batch.next_positions()
        output = self._forward(
            last, self._batch.mask, positions, self._batch.cache, [r.key for r in self._running]
        )
        self._advance(self._running, output.logits[:, -1, :].float(), first_row=0)

    def _advance(self, requests: list[_Request], logits, first_row: int) -> None:
        """Give each request its next token; retire the ones that are done."""
        done: set[int] = set()
        now = time.monotonic()
        for offset, request in enumerate(requests):
            row = first_row + offset
            if request.cancelled.is_set():
                request.events.put(self._finish(request, "stop"))
                done.add(row)
                continue
            if request.deadline is not None and now > request.deadline:
                request.events.put(
                    GenerationTimeoutError(
                        f"the answer took longer than the request's timeout "
                        f"({len(request.answer_ids)} tokens generated)"
                    )
                )
                done.add(row)
                continue
            token = request.sampler.next_token(logits[offset], request.answer_ids)
            reason = self._push(request, token)
            if reason is not None:
                request.events.put(self._finish(request, reason))
                done.add(row)
        if done:
            kept = [i for i in range(len(self._running)) if i not in done]
            self._running = [self._running[i] for i in kept]
            self._batch.keep(kept)

    def _push(self, request: _Request, token: int) -> str | None:
        """Record a token and stream the text it completes; why the request is done, if
        it is."""
        request.sampled += 1
        if token in self._stop_ids:
            self._flush(request, final=True)
            return "stop"
        request.answer_ids.append(token)
        text = self._answer_text(request)
        for stop in request.stop:
            if stop in text:
                self._flush(request, final=True, text=text[: text.index(stop)])
                return "stop"
        if len(request.answer_ids) >= request.max_tokens:
            self._flush(request, final=True, text=text)
            return "length"
        self._flush(request, final=False, text=text)
        return None

    def _flush(self, request: _Request, *, final: bool, text: str | None = None) -> None:
        """Stream the answer's new text. Until the end, hold back an incomplete character
        and any tail that could still become a stop string."""
        if text is None:
            text = self._answer_text(request)
        ready = len(text)
        if not final:
            if text.endswith("\ufffd"):
                ready = len(text.rstrip("\ufffd"))
            for stop in request.stop:
                for size in range(min(len(stop) - 1, ready), 0, -1):
                    if text[:ready].endswith(stop[:size]):
                        ready -= size
                        break
        if ready > request.sent:
            request.events.put(text[request.sent : ready])
            request.sent = ready
        if final:
            request.final_text = text

    def _answer_text(self, request: _Request) -> str:
        text = self.base.tokenizer.decode(request.answer_ids, skip_special_tokens=True)
        return text.lstrip()

    def _finish(self, request: _Request, reason: str) -> Generation:
        text = request.final_text if request.final_text is not None else self._answer_text(request)
        return Generation(
            text=text.strip(),
            prompt_tokens=len(request.prompt_ids),
            completion_tokens=request.sampled,
            finish_reason=reason,  # type: ignore[arg-type]
            adapter=request.adapter,
        )

    def _forward(self, ids, mask, positions, cache, keys: list[str], *, last_only: bool = False):
        """One forward pass with each row's adapter."""
        arguments: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": positions,
            "past_key_values": cache,
            "use_cache": True,
            "logits_to_keep": 1 if last_only else 0,
        }
        return self._adapters.forward(arguments, keys)

    def _adapter_ready(self, request: _Request) -> bool:
        """Load the request's adapter if it is new; a failure fails this request only."""
        if request.adapter_path is None or request.key in self._adapters.loaded:
            return True
        try:
            self._adapters.load(request.key, request.adapter_path)
        except Exception as exc:
            request.events.put(
                HybridError(
                    f"cannot load adapter {request.key}: {exc}", hint="see `hybrid adapters show`"
                )
            )
            return False
        return True


def _stop_token_ids(base: BaseModel) -> set[int]:
    """Every token that ends the assistant's turn: the model's eos id(s), the tokenizer's,
    and ChatML's <|im_end|> where the vocabulary has it."""
    configured = base.model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(base.tokenizer.eos_token_id)
    im_end = base.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if im_end != base.tokenizer.unk_token_id:
        ids.add(im_end)
    return {i for i in ids if isinstance(i, int)}
