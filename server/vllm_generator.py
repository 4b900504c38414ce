"""A Generator that hands generation to a vLLM server (`[models] generator = "vllm"`).

hybrid still builds every prompt itself, as in training, and sends its token ids to
vLLM's completions endpoint, so vLLM sees the same tokens the adapter was trained on;
the model named is the adapter's immutable `name@version` (or the base model). A version
is loaded into vLLM the first time a request needs it (runtime LoRA loading; a version
is never reloaded under a name already in use, vllm#42125), and versions the registry no
longer lists as active or candidate are unloaded then. vLLM does not run hybrid's figure
constraint, so its answers are checked after the fact (Answer.ungrounded_figures).

With several replicas (`[vllm] url` as a list), each request goes to the reachable one
with the fewest answers in flight, and each replica gets the versions it lacks the same
way: at start, after a promotion or rollback, and when a request needs one.

Each request's answer is read by a thread of its own into a TokenStream, so callers read
it exactly as they read the local engine's. No replica reachable, or one stopping
mid-answer, is an UnavailableError (503 with Retry-After); `check()` says which replicas
answer, for /healthz.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from hybrid.config import VllmSettings
from hybrid.errors import HybridError, UnavailableError
from hybrid.protocols import GenerationRequest
from hybrid.types import AdapterRef, Generation, Message
from server.engine import AdapterLookup, GenerationTimeoutError, resolve_adapter
from server.engine_tokens import EngineTokens
from server.streams import TokenStream
from training import AdapterRecord

log = logging.getLogger("hybrid.server")
RETRY_AFTER = 5  # seconds a client is told to wait while vLLM is unreachable
SERVED = ("active", "candidate")  # the versions kept loaded in vLLM


@dataclass(frozen=True)
class Reachability:
    """What /healthz says of the vLLM replicas."""

    answering: bool  # at least one replica answers
    detail: str | None = None  # the replicas that do not, and why


class VllmGenerator:
    """The client of one vLLM server, or of several replicas of it (`[vllm] url` as a
    list): each request goes to the reachable replica with the fewest answers in flight,
    and every replica is kept serving the registry's active and candidate versions."""

    def __init__(
        self,
        settings: VllmSettings,
        *,
        tokenizer: Any,  # the base model's transformers tokenizer
        base_model: str,  # the name vLLM serves the base model under
        adapters: AdapterLookup | None = None,
        listed: Callable[[], list[AdapterRecord]] | None = None,  # the registry's versions
    ) -> None:
        self.settings = settings
        self.base_model = base_model
        self._tokens = EngineTokens(tokenizer)
        self.longest_token_chars = self._tokens.longest_token_chars
        self._lookup = adapters
        self._listed = listed or (lambda: [])
        key = os.environ.get(settings.api_key_env, "") if settings.api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.replicas = [
            _Replica(url, headers, settings.connect_timeout, base_model, self._listed)
            for url in settings.urls
        ]
        self._choosing = threading.Lock()

    # -- TokenBudget ---------------------------------------------------------------------

    @property
    def context_window(self) -> int:
        """vLLM's --max-model-len (known from the first reconcile; the tokenizer's until
        then, as it costs no request to vLLM)."""
        known = [r.context_window for r in self.replicas if r.context_window is not None]
        return min(known) if known else int(self._tokens.tokenizer.model_max_length or 2048)

    def prompt_ids(self, messages: Sequence[Message]) -> list[int]:
        return self._tokens.prompt_ids(messages)

    # -- Generator -----------------------------------------------------------------------

    def stream(self, request: GenerationRequest) -> TokenStream:
        record = resolve_adapter(self._lookup, request.adapter)
        failures: list[UnavailableError] = []
        tried: list[_Replica] = []
        while (replica := self._reserve(tried)) is not None:
            tried.append(replica)
            try:
                return self._stream_on(replica, record, request)
            except UnavailableError as exc:  # the next replica may answer
                self._release(replica)
                failures.append(exc)
            except BaseException:
                self._release(replica)
                raise
        if len(failures) == 1:
            raise failures[0]
        raise UnavailableError(
            f"none of the {len(failures)} vLLM replicas is reachable",
            hint="retry shortly; /healthz says when one is back",
            retry_after=RETRY_AFTER,
        )

    def check(self) -> Reachability:
        """Which replicas answer now (asked of their /health)."""
        problems = [problem for problem in (r.check() for r in self.replicas) if problem]
        if not problems:
            return Reachability(answering=True)
        answering = len(problems) < len(self.replicas)
        if answering:
            problems.append(f"answering with the other {len(self.replicas) - len(problems)}")
        return Reachability(answering, "; ".join(problems))

    def reconcile(self) -> None:
        """Make every replica's adapters the registry's active and candidate versions, and
        learn the context window (at start, after a promotion or a rollback). A replica
        that is down gets them when it is next used."""
        listed = self._listed()
        failures = []
        for replica in self.replicas:
            try:
                replica.reconcile(listed)
            except UnavailableError as exc:
                failures.append(f"{replica.url}: {exc}")
        if failures:
            raise UnavailableError(f"vLLM adapters not reconciled on {'; '.join(failures)}")

    def close(self) -> None:
        for replica in self.replicas:
            replica.close()

    # -- one request on one replica ------------------------------------------------------

    def _reserve(self, tried: list[_Replica]) -> _Replica | None:
        """The replica to try next (reachable ones first, then the least busy), counted
        in flight from now until its answer ends; None when all were tried."""
        with self._choosing:
            left = [replica for replica in self.replicas if replica not in tried]
            if not left:
                return None
            chosen = min(left, key=lambda replica: (not replica.reachable, replica.in_flight))
            chosen.in_flight += 1
            return chosen

    def _release(self, replica: _Replica) -> None:
        with self._choosing:
            replica.in_flight -= 1

    def _stream_on(
        self, replica: _Replica, record: AdapterRecord | None, request: GenerationRequest
    ) -> TokenStream:
        if replica.context_window is None:  # it was down when the server started
            replica.reconcile(self._listed())
        if record is not None:
            replica.load(record)
        prompt_ids, room = self._tokens.fitted_prompt(request, self.context_window)
        settings = request.settings
        body = {
            "model": str(record.ref) if record else self.base_model,
            "prompt": prompt_ids,
            "max_tokens": min(settings.max_new_tokens, room),
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "seed": settings.seed,
            "repetition_penalty": settings.repetition_penalty,
            "stop": list(request.stop) or None,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            response = replica.open(body)
        except _ModelMissing:  # vLLM restarted without the versions loaded since its start
            replica.forget_loaded()
            if record is not None:
                replica.load(record)
            response = replica.open(body)
        stream = TokenStream()
        deadline = time.monotonic() + request.timeout if request.timeout else None
        threading.Thread(
            target=self._read,
            args=(replica, response, stream, record.ref if record else None, len(prompt_ids)),
            kwargs={"deadline": deadline},
            name="vllm-stream",
            daemon=True,
        ).start()
        return stream

    def _read(
        self,
        replica: _Replica,
        response: httpx.Response,
        stream: TokenStream,
        adapter: AdapterRef | None,
        prompt_tokens: int,
        *,
        deadline: float | None,
    ) -> None:
        """Put each text delta on `stream`, then the Generation (or the error)."""
        parts: list[str] = []
        usage: dict[str, int] = {}
        steps = 0  # vLLM streams one event per token; usage comes only at the end
        finish = "stop"
        try:
            for event in _events(response):
                if stream.cancelled.is_set():
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise GenerationTimeoutError("the answer took longer than the timeout")
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    steps += 1
                    text = choice.get("text") or ""
                    if not parts:
                        text = text.lstrip()  # as the local engine: no leading whitespace
                    if text:
                        parts.append(text)
                        stream.put(text)
                    if choice.get("finish_reason") == "length":
                        finish = "length"
        except HybridError as exc:
            stream.put(exc)
            return
        except (httpx.HTTPError, ValueError) as exc:
            stream.put(replica.down(exc, during="mid-answer"))
            return
        finally:
            response.close()
            self._release(replica)
        stream.put(
            Generation(
                text="".join(parts),
                prompt_tokens=usage.get("prompt_tokens", prompt_tokens),
                completion_tokens=usage.get("completion_tokens", steps),
                finish_reason=finish,  # type: ignore[arg-type]
                adapter=adapter,
            )
        )


class _Replica:
    """One vLLM server: what it serves, as far as hybrid knows, and the calls to it."""

    def __init__(
        self,
        url: str,
        headers: dict[str, str],
        connect_timeout: float,
        base_model: str,
        listed: Callable[[], list[AdapterRecord]],
    ) -> None:
        self.url = url.rstrip("/")
        self.base_model = base_model
        self._connect_timeout = connect_timeout
        self._listed = listed
        self._client = httpx.Client(
            base_url=self.url,
            headers=headers,
            timeout=httpx.Timeout(60.0, connect=connect_timeout),
        )
        self._lock = threading.Lock()  # loading and unloading adapters
        self._loaded: set[str] | None = None  # adapter names it serves, once asked
        self.context_window: int | None = None  # its --max-model-len, once asked
        self.reachable = True  # until a call fails
        self.in_flight = 0  # answers it is streaming (changed under the generator's lock)

    def check(self) -> str | None:
        """Why it cannot answer now (asked of its /health), or None."""
        try:
            self._client.get("/health", timeout=self._connect_timeout).raise_for_status()
        except httpx.HTTPError as exc:
            self._lost()
            return f"vLLM at {self.url} is unreachable: {exc}"
        self.reachable = True
        return None

    def reconcile(self, listed: list[AdapterRecord]) -> None:
        with self._lock:
            self._reconcile_locked(listed)

    def load(self, record: AdapterRecord) -> None:
        """Have it serve `record` under its name@version (once)."""
        with self._lock:
            if self._loaded is None:
                self._reconcile_locked(self._listed())
            assert self._loaded is not None
            if str(record.ref) not in self._loaded:
                self._load_locked(record)
                self._unload_unlisted(self._listed())

    def forget_loaded(self) -> None:
        with self._lock:
            self._loaded = None

    def open(self, body: dict[str, Any]) -> httpx.Response:
        """The streamed response to a completions request."""
        request = self._client.build_request("POST", "/v1/completions", json=body)
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self.down(exc) from None
        if response.status_code >= 400:
            detail = _error_message(response)
            response.close()
            if response.status_code == 404:
                raise _ModelMissing(detail)
            if response.status_code >= 500:
                raise self.down(f"vLLM answered {response.status_code}: {detail}")
            # A request vLLM refuses that hybrid let through is hybrid's fault (5xx).
            raise HybridError(f"vLLM refused the request ({response.status_code}): {detail}")
        self.reachable = True
        return response

    def close(self) -> None:
        self._client.close()

    def down(self, cause: object, *, during: str = "") -> UnavailableError:
        """The error for it unreachable. When it is back it may be a new process, with
        only its preloaded adapters: what it serves is asked again then."""
        self._lost()
        where = f" {during}" if during else ""
        log.warning("vLLM at %s is unreachable%s: %s", self.url, where, cause)
        return UnavailableError(
            f"the generator (vLLM at {self.url}) is unreachable{where}",
            hint="retry shortly; /healthz says when it is back",
            retry_after=RETRY_AFTER,
        )

    def _lost(self) -> None:
        """Unreachable; when back it may be a new process, serving other adapters."""
        self._loaded, self.reachable = None, False

    def _reconcile_locked(self, listed: list[AdapterRecord]) -> None:
        try:
            reply = self._client.get("/v1/models")
            reply.raise_for_status()
            models = reply.json()["data"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise self.down(exc) from None
        base = [m for m in models if m["id"] == self.base_model]
        if not base:
            served = ", ".join(m["id"] for m in models)
            raise UnavailableError(
                f"vLLM at {self.url} serves {served}, not the base model {self.base_model!r}",
                hint="start it with the line `hybrid vllm command` prints",
            )
        self.context_window = int(base[0].get("max_model_len") or 2048)
        self._loaded = {m["id"] for m in models if m["id"] != self.base_model}
        self.reachable = True
        self._unload_unlisted(listed)
        for record in listed:
            if record.status in SERVED and str(record.ref) not in self._loaded:
                self._load_locked(record)

    def _load_locked(self, record: AdapterRecord) -> None:
        assert self._loaded is not None
        name = str(record.ref)
        self._post("/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(record.path)})
        self._loaded.add(name)

    def _unload_unlisted(self, listed: list[AdapterRecord]) -> None:
        assert self._loaded is not None
        keep = {str(record.ref) for record in listed if record.status in SERVED}
        for name in sorted(self._loaded - keep):
            self._post("/v1/unload_lora_adapter", {"lora_name": name})
            self._loaded.discard(name)

    def _post(self, path: str, body: dict[str, Any]) -> None:
        try:
            reply = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise self.down(exc) from None
        if reply.status_code >= 400:
            raise HybridError(
                f"vLLM at {self.url} refused {path} for {body}: {_error_message(reply)}"
            )


class _ModelMissing(HybridError):
    """vLLM does not serve the model a request named."""


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The JSON objects of a server-sent event stream, up to `data: [DONE]`."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        event = json.loads(data)
        if "error" in event:
            raise HybridError(f"vLLM failed mid-answer: {event['error']}")
        yield event
    raise httpx.RemoteProtocolError("the stream ended before [DONE]")


def _error_message(response: httpx.Response) -> str:
    try:
        response.read()
        body = response.json()
        error = body.get("error", body)
        return str(error.get("message", error) if isinstance(error, dict) else error)[:300]
    except (ValueError, httpx.HTTPError):
        return response.text[:300] if response.is_closed else "(no body)"
