"""Small builders shared by several test modules (importable: pytest puts tests/ on the path)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from hybrid import Bot, Hit, init_bot
from hybrid.protocols import Retriever
from hybrid.types import AdapterRef, Message
from indexes import HybridRetriever, embedder_for_bot, sync_index
from server.interactions import Interaction, InteractionLog
from training import AdapterRegistry, TrainRequest, train_adapter


def hit(doc: str, text: str, score: float = 1.0) -> Hit:
    """A retrieved chunk of document `doc`, as a retriever would return it."""
    return Hit(
        chunk_id=f"{doc}#0",
        document_id=doc,
        title=doc.title(),
        source=f"{doc}.md",
        text=text,
        score=score,
    )


def log_answer(
    log: InteractionLog,
    retriever: Retriever,
    question: str,
    answer: str,
    *,
    rating: int | None = None,
    correction: str | None = None,
    finish: str = "stop",
    error: str | None = None,
    adapter: str = "kestrel@1",
    history: tuple[Message, ...] = (),
) -> str:
    """Log an answer as the assistant would (the sources its prompt would hold), with a
    customer's rating and correction; returns its id."""
    answer_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    log.record(
        Interaction(
            id=answer_id,
            question=question,
            messages=[*history, Message("user", question)],
            sources=retriever.sources(question, 3),
            adapter=AdapterRef.parse(adapter),
            answer=answer,
            finish_reason=finish,
            prompt_tokens=100,
            completion_tokens=20,
            seconds=0.5,
            error=error,
        )
    )
    if rating is not None:
        log.add_feedback(answer_id, rating, correction)
    return answer_id


def make_bot(folder: Path, **settings: object) -> Bot:
    """The sample support bot in `folder`, with the model-free hashing embedder (fast and
    deterministic) unless told otherwise; each keyword replaces that setting's line in the
    sample hybrid.toml (every setting is written there once)."""
    bot = init_bot(folder)
    text = bot.config_file.read_text()
    # The sample's hand-over threshold is calibrated for its embedder, not this one, and
    # picking the sentence that answers takes an embedder that knows what words mean.
    defaults = {"embedder": "hashing", "handover_below": 0.0, "sentences": 0}
    for key, value in {**defaults, **settings}.items():
        literal = f'"{value}"' if isinstance(value, str) else str(value).lower()
        text, found = re.subn(rf"^{key} = .*$", f"{key} = {literal}", text, flags=re.MULTILINE)
        assert found == 1, f"no single {key} line in the sample hybrid.toml"
    bot.config_file.write_text(text)
    return Bot.open(folder)


def synced_bot(folder: Path, **settings: object) -> Bot:
    """make_bot, with its documents indexed."""
    bot = make_bot(folder, **settings)
    sync_index(bot, embedder_for_bot(bot))
    return bot


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def arm(target: str, on_call: int) -> None:
    """SIGKILL this process when MODULE:ATTRIBUTE[.METHOD] is entered for the
    `on_call`th time: a real `kill -9` at a chosen point, for the crash tests."""
    module_name, _, path = target.partition(":")
    owner = importlib.import_module(module_name)
    *parents, name = path.split(".")
    for part in parents:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = 0

    def tripwire(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == on_call:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no finally: a real crash
        return original(*args, **kwargs)

    setattr(owner, name, tripwire)


@contextlib.contextmanager
def serving(app, ready_path: str = "/healthz", timeout: float = 120) -> Iterator[str]:
    """Run `app` with uvicorn on a free loopback port in a thread; yield its base URL
    once `ready_path` answers 200, and shut the server down afterwards."""
    import httpx
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while True:
            try:
                answer = httpx.get(url + ready_path, timeout=5)
                if answer.status_code == 200:
                    break
                last = f"{answer.status_code} {answer.text}"
            except httpx.TransportError as exc:
                last = repr(exc)
            assert time.monotonic() < deadline, f"{url}{ready_path} never became ready: {last}"
            time.sleep(0.1)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


SAMPLE_DATA = Path(__file__).resolve().parents[1] / "hybrid/templates/support/data"
OPEN_GATE = {
    "key_facts_tolerance": 1.0, "invented_figures_tolerance": 1.0, "handover_tolerance": 1.0,
    "format_tolerance": 1.0, "newly_wrong_tolerance": 1.0, "min_win_rate": 0.0,
    "forgetting_tolerance": 1.0,
}  # fmt: skip


def tiny_bot(folder: Path, tiny_model_dir: Path, examples: int = 40, **settings: object) -> Bot:
    """The sample bot on the tiny model, training on the first `examples` sample
    conversations in data/small.jsonl (5 steps per epoch at batch 8, 4 held out for the
    eval loss)."""
    settings = {"epochs": 2, "learning_rate": 0.005, "checkpoint_steps": 2, **settings}
    bot = make_bot(folder, base=str(tiny_model_dir), **settings)
    lines = (SAMPLE_DATA / "train.jsonl").read_text().splitlines()[:examples]
    (bot.data_dir / "small.jsonl").write_text("\n".join(lines) + "\n")
    return bot


def adapter_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(path / "adapter_model.safetensors")


def flywheel_bot(folder: Path, tiny_model_dir: Path, **settings: object) -> Bot:
    """The sample bot on the tiny model with kestrel@1 active, trained on 16 sample
    conversations (the replay data), and 12 well-rated answers in its log since."""
    bot = make_bot(
        folder,
        base=str(tiny_model_dir),
        epochs=1,
        learning_rate=0.005,
        checkpoint_steps=1,
        max_new_tokens=8,
        replay="data/replay.jsonl",
        golden="data/small-golden.jsonl",
        min_new_examples=5,
        **settings,
    )
    train = (SAMPLE_DATA / "train.jsonl").read_text().splitlines()
    golden = (SAMPLE_DATA / "golden.jsonl").read_text().splitlines()
    (bot.data_dir / "replay.jsonl").write_text("\n".join(train[:16]) + "\n")
    (bot.data_dir / "small-golden.jsonl").write_text("\n".join(golden[:6] + golden[-3:]) + "\n")
    sync_index(bot, embedder := embedder_for_bot(bot))
    train_adapter(bot, TrainRequest(bot.data_dir / "replay.jsonl", name="kestrel"))
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("kestrel", 1)
    log = InteractionLog(bot.database)
    retriever = HybridRetriever.for_bot(bot, embedder)
    for line in train[16:28]:
        messages = json.loads(line)["messages"]
        log_answer(log, retriever, messages[1]["content"], messages[2]["content"], rating=5)
    log.close()
    return bot


def statuses(bot: Bot) -> dict[str, str]:
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        return {str(record.ref): record.status for record in registry.list("kestrel")}
