"""The generation engine: one base model in memory, many adapters, continuous batching.

Callers queue requests (`stream`) and read their text from a stream (server/streams.py). Two
threads share the model: the prefill thread admits waiting requests while the batch has
room and runs their prompts in chunks, the one with the fewest tokens left first, so a
short question is not held up behind a long document; the decoding thread stacks each
prefilled prompt's KV cache onto the batch between steps, runs one step for all rows, and
retires finished, cancelled or timed-out ones, so a request never waits for another to
finish and decoding never pauses for a newcomer's prompt. Rows of one batch may name
different adapters (server/adapter_set.py).

On a CPU, decoding runs on half the cores and a prefill on the other half while there
is decoding, on all of them otherwise: a decoding step is bound by memory bandwidth,
which one core nearly saturates, and a prefill by arithmetic. On 2 cores a step at batch
8 took ~137 ms beside a ~290-token prefill instead of ~125 ms alone, and the prefill
~0.97 s instead of ~0.65 s: 1.4 times the work done per second. Alone, a step is faster
on all the cores (batch 1: ~40 ms against ~57), but then anything else that wants a core
(the server streaming tokens, a client on the same machine) holds up every product: over
HTTP with the client on the same 2 cores, one request at a time got 12.4 tokens/s
decoding on both cores and 16.1 on one.

Adapters are loaded by the prefill thread while no forward pass runs (AdapterSet holds
passes off meanwhile); each is loaded under its `name@version`, so a promoted version is
a new identity and nothing loaded for the old one is reused. Waiting requests are
bounded: past `max_waiting`, submit raises EngineBusyError (HTTP 429).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from hybrid.errors import BusyError, HybridError, UnavailableError
from hybrid.protocols import GenerationRequest
from hybrid.types import AdapterRef, Generation, Message
from server.adapter_set import AdapterSet
from server.engine_requests import Prefilled, Prefilling, Request
from server.engine_tokens import EngineTokens
from server.grounding import AnswerGuard, grounded_figures
from server.kv_batch import KVBatch, PrefixCache
from server.packed_linear import pack_linear_layers
from server.sampling import TokenSampler, whitespace_token_ids
from server.streams import TokenStream
from training import AdapterRecord, BaseModel

AdapterLookup = Callable[[AdapterRef], AdapterRecord]
# Prompt tokens run in one forward pass: a long prompt is run in such chunks, between
# which a shorter prompt that arrived meanwhile gets its turn.
PREFILL_CHUNK = 512


class EngineBusyError(BusyError):
    code = "rate_limit_exceeded"


class GenerationTimeoutError(HybridError):
    code = "timeout"


class GenerationEngine:
    def __init__(
        self,
        base: BaseModel,
        adapters: AdapterLookup | None = None,
        *,
        max_batch: int = 16,
        max_waiting: int = 64,
        prefill_chunk: int = PREFILL_CHUNK,
    ) -> None:
        self.base = base
        self.prefill_chunk = prefill_chunk
        self.context_window = base.context_window
        self._tokens = EngineTokens(base.tokenizer)
        self.longest_token_chars = self._tokens.longest_token_chars
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self._lookup = adapters
        self._stop_ids = _stop_token_ids(base)
        self._whitespace_ids = whitespace_token_ids(base.tokenizer)
        pack_linear_layers(base.model, batch_hint=max_batch)
        self._adapters = AdapterSet(base.model)
        self._prefixes = PrefixCache()
        # Under _wake: the queue, the prompts handed to the decoding thread, and how many
        # requests hold a batch row or are on their way to one.
        self._wake = threading.Condition()
        self._waiting: collections.deque[Request] = collections.deque()
        self._prefilled: list[Prefilled] = []
        self._occupied = 0
        self._closed = False
        # The decoding thread's own.
        self._running: list[Request] = []
        self._batch = KVBatch()
        self._cores = _cores_to_split(base)
        self._threads = [
            threading.Thread(target=self._prefill_loop, name="prefill", daemon=True),
            threading.Thread(target=self._decode_loop, name="generation", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        # A daemon thread still inside torch when the interpreter finalises aborts the
        # process ("terminate called without an active exception"): stop them first.
        atexit.register(self.close)

    # -- the callers' side ------------------------------------------------------------

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        """The prompt's tokens: `messages` rendered with the chat template, tokenized."""
        return self._tokens.prompt_ids(messages)

    @property
    def queue_depth(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    def loaded_adapters(self) -> list[str]:
        return sorted(self._adapters.loaded)

    def stream(self, request: GenerationRequest) -> TokenStream:
        """The Generator protocol: queue a request; its text arrives on the returned
        stream. Raises at once for an unknown adapter, a prompt longer than the context,
        or a full queue. Under `settings.grounded_figures`, the answer writes only figures
        of `request.grounding` (see server/grounding.py)."""
        settings = request.settings
        record = resolve_adapter(self._lookup, request.adapter)
        prompt_ids, room = self._tokens.fitted_prompt(request, self.context_window)
        grounding = request.grounding
        queued = Request(
            prompt_ids=prompt_ids,
            max_tokens=min(settings.max_new_tokens, room),
            stop=tuple(s for s in request.stop if s),
            adapter=record.ref if record else None,
            adapter_path=str(record.path) if record else None,
            deadline=time.monotonic() + request.timeout if request.timeout else None,
            sampler=TokenSampler(settings, self._whitespace_ids),
            guard=AnswerGuard(
                grounded_figures(grounding)
                if grounding is not None and settings.grounded_figures
                else None,
                grounding or "",
            ),
            prefix_length=self._tokens.shared_prefix_length(request.messages, prompt_ids),
        )
        with self._wake:
            if self._closed:
                raise UnavailableError("the generation engine is shut down")
            if len(self._waiting) >= self.max_waiting:
                raise EngineBusyError(
                    f"{len(self._waiting)} requests are already waiting", retry_after=1
                )
            self._waiting.append(queued)
            self._wake.notify_all()
        return queued.stream

    def close(self) -> None:
        """Stop both threads and wait for them; waiting and running requests fail."""
        atexit.unregister(self.close)
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        for thread in self._threads:
            thread.join()
        handed = [item.request for item in self._prefilled]
        for request in [*self._waiting, *handed, *self._running]:
            request.stream.put(UnavailableError("the generation engine shut down"))
        self._waiting.clear()
        self._prefilled, self._running = [], []

    # -- the worker's side -------------------------------------------------------------

    def _prefill_loop(self) -> None:
        import torch

        started: list[Prefilling] = []
        with torch.inference_mode():
            try:
                while not self._closed:
                    request = self._admit(wait=not started)
                    if request is not None:
                        if self._adapter_ready(request):
                            started.append(Prefilling(request, None, 0))
                        continue  # every request the batch has room for starts first
                    if not started:
                        return  # closed
                    item = min(started, key=lambda prefilling: prefilling.left)
                    if item.request.stream.cancelled.is_set():
                        started.remove(item)
                        self._retire(item.request, self._finish(item.request, "stop"))
                        continue
                    prefilled = None
                    try:
                        # A glance at the decoding thread's rows: a stale answer only
                        # costs this prompt some speed.
                        with self._cores_for(shared=bool(self._running)):
                            prefilled = self._prefill_chunk(item)
                    except Exception as exc:  # a failed prompt fails its request only
                        started.remove(item)
                        self._retire(item.request, exc)
                        continue
                    if prefilled is not None:
                        started.remove(item)
                    with self._wake:
                        if prefilled is not None:
                            self._prefilled.append(prefilled)
                        self._wake.notify_all()
            finally:
                for item in started:
                    item.request.stream.put(UnavailableError("the generation engine shut down"))

    def _admit(self, *, wait: bool) -> Request | None:
        """The next waiting request if the batch has room for it, else None (`wait`: block
        until there is one; None once closed)."""
        with self._wake:
            while not self._closed:
                if self._waiting and self._occupied < self.max_batch:
                    request = self._waiting.popleft()
                    if request.stream.cancelled.is_set():
                        request.stream.put(self._finish(request, "stop"))
                        continue
                    self._occupied += 1
                    return request
                if not wait:
                    return None
                self._wake.wait()
            return None

    def _prefill_chunk(self, item: Prefilling) -> Prefilled | None:
        """Run the next `prefill_chunk` tokens of a prompt (its shared prefix's cache is
        copied in first: see PrefixCache); the prompt's Prefilled once it is all run."""
        import torch

        request = item.request
        if item.cache is None and request.prefix_length:
            prefix = tuple(request.prompt_ids[: request.prefix_length])

            def compute(key: str) -> Any:
                row = torch.tensor([prefix])
                positions = torch.arange(len(prefix)).unsqueeze(0)
                output = self._forward(row, torch.ones_like(row), positions, None, [key])
                return output.cache

            item.cache, item.done = self._prefixes.cache(prefix, request.key, compute), len(prefix)
        end = min(item.done + self.prefill_chunk, len(request.prompt_ids))
        ids = torch.tensor([request.prompt_ids[item.done : end]])
        positions = torch.arange(item.done, end).unsqueeze(0)
        mask = torch.ones(1, end, dtype=torch.long)
        # Logits for the last position only: the whole prompt's would cost a fifth of it.
        output = self._forward(ids, mask, positions, item.cache, [request.key], last_only=True)
        item.cache, item.done = output.cache, end
        if item.left:
            return None
        return Prefilled(request, item.cache, mask, output.logits[:, -1, :].float())

    def _decode_loop(self) -> None:
        import torch

        with torch.inference_mode():
            while (ready := self._take_prefilled()) is not None:
                try:
                    while ready:
                        self._join(ready.pop(0))
                    if self._running:
                        with self._cores_for(shared=True):
                            self._step()
                except Exception as exc:  # a failed step fails its requests, not the engine
                    for request in [*self._running, *(item.request for item in ready)]:
                        self._retire(request, exc)
                    self._running, self._batch = [], KVBatch()

    def _join(self, item: Prefilled) -> None:
        """Stack a prefilled prompt onto the batch and choose its first token."""
        self._running.append(item.request)
        self._batch.add(item.cache, item.mask)
        self._advance([item.request], item.logits, first_row=len(self._running) - 1)

    def _take_prefilled(self) -> list[Prefilled] | None:
        """The prompts prefilled since the last step (waits for one while nothing is
        decoding); None once closed."""
        with self._wake:
            while not self._closed and not self._prefilled and not self._running:
                self._wake.wait()
            if self._closed:
                return None
            ready, self._prefilled = self._prefilled, []
            return ready

    def _retire(self, request: Request, event: object) -> None:
        """Hand a request its end (a Generation or an error) and free its batch row."""
        request.stream.put(event)
        with self._wake:
            self._occupied -= 1
            self._wake.notify_all()

    @contextlib.contextmanager
    def _cores_for(self, *, shared: bool) -> Iterator[None]:
        """Run a forward pass on half the cores (`shared`) or on all of them (CPU only: see
        the module's docstring). torch keeps the count per thread, but a thread that first
        uses torch takes the last count set, so the full count is put back afterwards."""
        import torch

        if self._cores < 2:
            yield
            return
        torch.get_num_threads()  # a thread's first use sets its count: not inside the pass
        torch.set_num_threads(self._cores // 2 if shared else self._cores)
        try:
            yield
        finally:
            torch.set_num_threads(self._cores)

    def _step(self) -> None:
        """One token for every running request."""
        import torch

        last = torch.tensor([[r.answer_ids[-1]] for r in self._running])
        positions = self._batch.next_positions()
        output = self._forward(
            last, self._batch.mask, positions, self._batch.cache, [r.key for r in self._running]
        )
        self._advance(self._running, output.logits[:, -1, :].float(), first_row=0)

    def _advance(self, requests: list[Request], logits, first_row: int) -> None:
        """Give each request its next token; retire the ones that are done."""
        done: set[int] = set()
        now = time.monotonic()
        for offset, request in enumerate(requests):
            row = first_row + offset
            if request.stream.cancelled.is_set():
                self._retire(request, self._finish(request, "stop"))
                done.add(row)
                continue
            if request.deadline is not None and now > request.deadline:
                self._retire(
                    request,
                    GenerationTimeoutError(
                        f"the answer took longer than the request's timeout "
                        f"({len(request.answer_ids)} tokens generated)"
                    ),
                )
                done.add(row)
                continue
            token = request.sampler.next_token(
                logits[offset], request.answer_ids, accept=partial(self._accepts, request)
            )
            reason = self._push(request, token)
            if reason is not None:
                self._retire(request, self._finish(request, reason))
                done.add(row)
        if done:
            kept = [i for i in range(len(self._running)) if i not in done]
            self._running = [self._running[i] for i in kept]
            self._batch.keep(kept)

    def _push(self, request: Request, token: int) -> str | None:
        """Record a token and stream the text it completes; why the request is done, if
        it is."""
        request.sampled += 1
        if token in self._stop_ids:
            self._flush(request, final=True)
            return "stop"
        request.answer_ids.append(token)
        text = request.text = self._tokens.answer_text(request.answer_ids)
        for stop in request.stop:
            if stop in text:
                self._flush(request, final=True, text=text[: text.index(stop)])
                return "stop"
        if len(request.answer_ids) >= request.max_tokens:
            self._flush(request, final=True, text=text)
            return "length"
        self._flush(request, final=False, text=text)
        return None

    def _flush(self, request: Request, *, final: bool, text: str | None = None) -> None:
        """Stream the answer's new text. Until the end, hold back an incomplete character
        and any tail that could still become a stop string."""
        if text is None:
            text = self._tokens.answer_text(request.answer_ids)
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
            request.stream.put(text[request.sent : ready])
            request.sent = ready
        if final:
            request.final_text = text

    def _accepts(self, request: Request, token_id: int) -> bool:
        return request.guard.allows(request.text, self._tokens.token_text(token_id))

    def _finish(self, request: Request, reason: str) -> Generation:
        text = (
            request.final_text
            if request.final_text is not None
            else self._tokens.answer_text(request.answer_ids)
        )
        return Generation(
            text=text.strip(),
            prompt_tokens=len(request.prompt_ids),
            completion_tokens=request.sampled,
            finish_reason=reason,  # type: ignore[arg-type]
            adapter=request.adapter,
            figures_grounded=request.guard.checks_figures,
        )

    def _forward(self, ids, mask, positions, cache, keys: list[str], *, last_only: bool = False):
        """One forward pass with each row's adapter."""
        arguments: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            "position_ids": positions,
            "cache": cache,
            "use_cache": True,
            "logits_to_keep": 1 if last_only else 0,
        }
        return self._adapters.forward(arguments, keys)

    def _adapter_ready(self, request: Request) -> bool:
        """Load the request's adapter if it is new; a failure fails this request only."""
        if request.adapter_path is None or request.key in self._adapters.loaded:
            return True
        try:
            self._adapters.load(request.key, request.adapter_path)
        except Exception as exc:
            error = HybridError(
                f"cannot load adapter {request.key}: {exc}", hint="see `hybrid adapters show`"
            )
            self._retire(request, error)
            return False
        return True


def resolve_adapter(
    lookup: AdapterLookup | None, adapter: AdapterRef | None
) -> AdapterRecord | None:
    """The registry's record for a requested adapter (None: the base model); raises
    AdapterNotFoundError for one the registry does not hold."""
    if adapter is None:
        return None
    if lookup is None:
        raise HybridError(f"adapter {adapter} requested, but this generator has no registry")
    return lookup(adapter)


def _cores_to_split(base: BaseModel) -> int:
    """The threads torch uses on this CPU (0 on a GPU: nothing to split)."""
    import torch

    return torch.get_num_threads() if base.model.device.type == "cpu" else 0


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
