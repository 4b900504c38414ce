"""What the server holds while it runs: the bot, and once loaded, the generator (the
local engine or a vLLM client), the retriever (once the index is synced), the assistant
over both, and the interaction log. Loading (the base model, the retriever) happens in a
background thread, so the server answers /healthz with 503 until it is ready."""

from __future__ import annotations

import _thread
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from hybrid.bot import Bot
from hybrid.errors import HybridError, UnavailableError
from hybrid.keys import KeyStore
from hybrid.protocols import Embedder
from hybrid.types import AdapterRef
from indexes import HybridRetriever, IndexNotReadyError, embedder_for_bot
from server.assistant import Assistant
from server.compose import Parts, ServedGenerator, compose
from server.files import FileStore
from server.flywheel.watch import PromotionWatch
from server.interactions import InteractionLog
from server.job_runner import JobRunner
from server.jobs import JobStore
from server.metrics import Metrics
from server.request_guard import is_loopback
from server.vllm_generator import Reachability, VllmGenerator
from training import AdapterRecord, AdapterRegistry

T = TypeVar("T")
log = logging.getLogger("hybrid.server")


class NotReadyError(UnavailableError):
    code = "loading"


@dataclass
class ServerState:
    bot: Bot
    host: str = ""  # the address it listens on; default: server.host
    status: Literal["loading", "ok", "failed"] = "loading"
    detail: str | None = None
    started_at: int = field(default_factory=lambda: int(time.time()))
    generator: ServedGenerator | None = None
    retriever: HybridRetriever | None = None
    assistant: Assistant | None = None
    log: InteractionLog | None = None
    metrics: Metrics = field(default_factory=Metrics)
    job_runner: JobRunner = field(init=False)
    _stores: threading.local = field(default_factory=threading.local)
    _embedder: Embedder | None = None
    _embedder_lock: _thread.LockType = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.host = self.host or self.bot.config.server.host
        self.job_runner = JobRunner(self.bot)

    @property
    def loopback_only(self) -> bool:
        """Whether only this machine can reach the server (keyless use is allowed then)."""
        return is_loopback(self.host)

    @property
    def base_model_id(self) -> str:
        return self.bot.config.models.base

    def ready(self) -> Assistant:
        """The assistant, or NotReadyError (503) while loading or after a failed load."""
        if self.assistant is None:
            detail = f": {self.detail}" if self.detail else ""
            raise NotReadyError(f"the server is {self.status}{detail}")
        return self.assistant

    def generator_reachability(self) -> Reachability:
        """Whether the generator answers now (vLLM's replicas may not)."""
        if isinstance(self.generator, VllmGenerator):
            return self.generator.check()
        return Reachability(answering=True)

    def registry(self) -> AdapterRegistry:
        return self._per_thread(
            "registry", lambda: AdapterRegistry(self.bot.database, self.bot.adapters_dir)
        )

    def keys(self) -> KeyStore:
        return self._per_thread("keys", lambda: KeyStore(self.bot.database))

    def files(self) -> FileStore:
        return self._per_thread(
            "files", lambda: FileStore(self.bot.database, self.bot.state_dir / "files")
        )

    def jobs(self) -> JobStore:
        return self._per_thread("jobs", lambda: JobStore(self.bot.database))

    def promotions(self) -> PromotionWatch:
        return self._per_thread(
            "promotions", lambda: PromotionWatch(self.bot.database, self.bot.config.retrain)
        )

    def watch_promotions(self) -> None:
        """After a rating: a retrained version whose ratings fell is rolled back (see
        server/flywheel/watch.py), noted on the job that promoted it."""
        for decision in self.promotions().check(self.registry()):
            if decision.job_id is not None:
                level = "warn" if decision.status == "rolled_back" else "info"
                self.jobs().add_event(decision.job_id, decision.reason, level=level)

    def _per_thread(self, name: str, connect: Callable[[], T]) -> T:
        """This thread's own store (sqlite connections are not shared between threads)."""
        store = getattr(self._stores, name, None)
        if store is None:
            store = connect()
            setattr(self._stores, name, store)
        return store

    def find_adapter(self, ref: AdapterRef) -> AdapterRecord:
        return self.registry().get(ref)

    def embedder(self) -> Embedder:
        """The embedder syncs use: the retriever's, or a new one before the first sync."""
        if self.retriever is not None:
            return self.retriever.embedder
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = embedder_for_bot(self.bot)
            return self._embedder

    def index_changed(self) -> None:
        """After a sync: the first one gives the assistant its retriever (later versions
        are picked up by the retriever itself at its next search)."""
        if self.retriever is None and self.assistant is not None:
            self.retriever = HybridRetriever.for_bot(self.bot, self.embedder())
            self.assistant.retriever = self.retriever

    def load(self) -> None:
        """Start the fine-tuning job runner; load the model, the retriever (if the index
        was synced) and the log."""
        self.job_runner.start()
        started = time.perf_counter()
        try:
            bot = self.bot
            self.log = InteractionLog(
                bot.database,
                redact_pii=bot.config.server.redact_logs,
                pii_allowed=bot.config.training.pii_allowed,
            )

            def parts(retrieval: bool) -> Parts:
                return compose(bot, retrieval=retrieval, adapters=self.find_adapter, log=self.log)

            try:
                loaded = parts(retrieval=True)
            except IndexNotReadyError:  # raised before any model loads
                loaded = parts(retrieval=False)  # no sources until the first sync
            self.generator, self.retriever = loaded.generator, loaded.retriever
            self.adapters_changed()
            self.assistant = loaded.assistant
            self.status = "ok"
            sources = "with" if loaded.retriever is not None else "without (no index yet)"
            log.info(
                "ready: %s loaded in %.1f s, answering %s sources",
                bot.config.models.base,
                time.perf_counter() - started,
                sources,
            )
        except Exception:  # reported by /healthz; the process stays up to say so
            log.exception("the server failed to load")
            self.status, self.detail = "failed", "loading failed; the server's log says why"

    def adapters_changed(self) -> None:
        """At start and after a promotion or a rollback: vLLM's adapters are made the
        registry's active and candidate versions. If it is down, the first request that
        reaches it does this (and /healthz says it is down meanwhile)."""
        if not isinstance(self.generator, VllmGenerator):
            return
        try:
            self.generator.reconcile()
        except HybridError as exc:
            log.warning("vLLM's adapters are not reconciled yet: %s", exc)

    def close(self) -> None:
        self.job_runner.close()
        if self.generator is not None:
            self.generator.close()
        if self.log is not None:
            self.log.close()
