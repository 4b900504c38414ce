"""The generation engine on the tiny model: batched requests answer exactly as they
would alone, whatever adapters share their batch; streams, stop strings, cancellation,
timeouts and the bounded queue behave as a client expects."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import msgspec
import pytest
from support import make_bot

from hybrid import AdapterRef, Bot, GenerationSettings, Message
from hybrid.hardware import Placement
from hybrid.protocols import GenerationRequest, collect, generate
from hybrid.types import Generation
from server import GenerationEngine
from server.attention import register_gqa_attention
from server.compose import find_adapter
from server.engine import EngineBusyError, GenerationTimeoutError
from server.streams import TokenStream
from training import (
    AdapterRegistry,
    BaseModel,
    TrainRequest,
    load_base_model,
    render_chat,
    train_adapter,
)

QUESTIONS = [
    "How long is the return window?",
    "Do you ship to Canada?",
    "Hi",
    "What about gift cards and warranty claims for tents?",
    "How do I reset my password?",
    "Where is order 12345?",
    "Do you match prices?",
    "How long do repairs take?",
]
GREEDY = GenerationSettings(max_new_tokens=16)


def ask(question: str) -> list[Message]:
    return [Message("system", "Be brief."), Message("user", question)]


def submit(
    engine: GenerationEngine,
    messages: list[Message],
    settings: GenerationSettings,
    adapter: AdapterRef | None = None,
    **options,
) -> TokenStream:
    return engine.stream(GenerationRequest(messages, settings, adapter, **options))


def answer_with(
    engine: GenerationEngine,
    messages: list[Message],
    settings: GenerationSettings,
    adapter: AdapterRef | None = None,
) -> Generation:
    return generate(engine, GenerationRequest(messages, settings, adapter))


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """A bot with two different adapters on the tiny model: style@1 and terse@1."""
    bot = make_bot(
        tmp_path_factory.mktemp("engine") / "bot", base=str(tiny_model_dir), learning_rate=0.05
    )
    for name, seed in (("style", 0), ("terse", 1)):
        training = msgspec.structs.replace(bot.config.training, seed=seed)
        seeded = Bot(bot.root, msgspec.structs.replace(bot.config, training=training))
        train_adapter(seeded, TrainRequest(bot.data_dir / "train.jsonl", name=name, max_steps=4))
    return bot


def load_base(bot: Bot, attention: str | None = None) -> BaseModel:
    return load_base_model(
        bot.config.models.base, base_dir=bot.root, models_dir=bot.models_dir,
        placement=Placement("cpu", "float32"), attention=attention,
    )  # fmt: skip


@pytest.fixture()
def engine(bot):
    base = load_base(bot, register_gqa_attention())
    engine = GenerationEngine(base, adapters=lambda ref: find_adapter(bot, ref), max_batch=8)
    yield engine
    engine.close()


def test_an_answer_is_what_transformers_own_greedy_search_gives(
    engine: GenerationEngine, bot: Bot
) -> None:
    """The engine's own decoding (shared system-turn cache, spare-column KV cache, its
    attention, its linear layers) against `generate` on a plain copy of the model."""
    import torch

    plain = msgspec.structs.replace(GREEDY, repetition_penalty=1.0)
    plain_model = load_base(bot).model
    tokenizer = engine.base.tokenizer
    for question in QUESTIONS[:3]:
        prompt = render_chat(tokenizer, ask(question), add_generation_prompt=True)
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.inference_mode():
            expected = plain_model.generate(
                ids, max_new_tokens=plain.max_new_tokens, do_sample=False
            )[0, ids.shape[1] :]
        answer = answer_with(engine, ask(question), plain)
        assert answer.text == tokenizer.decode(expected, skip_special_tokens=True).strip()


def test_batched_requests_answer_as_they_would_alone(engine: GenerationEngine) -> None:
    alone = [answer_with(engine, ask(q), GREEDY).text for q in QUESTIONS]
    streams = []
    for question in QUESTIONS:  # staggered: later ones join a batch already decoding
        streams.append(submit(engine, ask(question), GREEDY))
        time.sleep(0.02)
    assert [collect(s).text for s in streams] == alone
    assert len(set(alone)) > 1, "different questions, different answers"


def test_one_batch_mixes_adapters_and_each_row_gets_its_own(engine: GenerationEngine) -> None:
    adapters = [None, AdapterRef("style", 1), AdapterRef("terse", 1)]
    alone = {
        (q, str(a)): answer_with(engine, ask(q), GREEDY, a).text
        for q in QUESTIONS[:4]
        for a in adapters
    }
    assert len({alone[(QUESTIONS[0], str(a))] for a in adapters}) == 3, "the adapters differ"
    streams = {
        (q, str(a)): submit(engine, ask(q), GREEDY, a) for q in QUESTIONS[:4] for a in adapters
    }
    together = {key: collect(stream) for key, stream in streams.items()}
    assert {key: g.text for key, g in together.items()} == alone
    assert {str(g.adapter) for g in together.values()} == {"None", "style@1", "terse@1"}
    assert engine.loaded_adapters() == ["style@1", "terse@1"]


def test_prompts_run_in_chunks_answer_as_run_whole_and_a_short_one_goes_first(
    bot, engine: GenerationEngine
) -> None:
    chunked = GenerationEngine(
        load_base(bot, register_gqa_attention()),
        adapters=lambda ref: find_adapter(bot, ref),
        prefill_chunk=8,
    )
    try:
        for question, adapter in zip(
            QUESTIONS[:3], [None, AdapterRef("style", 1), None], strict=True
        ):
            whole = answer_with(engine, ask(question), GREEDY, adapter).text
            assert answer_with(chunked, ask(question), GREEDY, adapter).text == whole
        document = "Returns are accepted within 45 days of delivery. " * 20
        finished: dict[str, float] = {}

        def answer(name: str, question: str, tokens: int) -> None:
            settings = msgspec.structs.replace(GREEDY, max_new_tokens=tokens)
            answer_with(chunked, ask(question), settings)
            finished[name] = time.perf_counter()

        long = threading.Thread(target=answer, args=("long", f"{document} Summarise.", 1))
        long.start()
        time.sleep(0.01)  # the long prompt is being run when the short one arrives
        answer("short", QUESTIONS[0], 4)
        long.join()
        assert finished["short"] < finished["long"], "the short prompt waited for the long one"
    finally:
        chunked.close()


def test_streamed_deltas_add_up_to_the_answer(engine: GenerationEngine) -> None:
    stream = submit(engine, ask(QUESTIONS[0]), GREEDY)
    deltas = list(stream)
    assert len(deltas) > 1 and "".join(deltas).strip() == stream.result.text
    assert stream.result.completion_tokens >= 1


def test_a_stop_string_ends_the_answer_before_it(engine: GenerationEngine) -> None:
    full = answer_with(engine, ask(QUESTIONS[1]), GREEDY)
    words = full.text.split()
    assert len(words) >= 3, full.text
    stop = words[2]
    stream = submit(engine, ask(QUESTIONS[1]), GREEDY, stop=(stop,))
    streamed = "".join(stream)
    assert stream.result.finish_reason == "stop"
    assert stop not in stream.result.text and full.text.startswith(stream.result.text)
    assert stop not in streamed


def test_a_cancelled_request_frees_its_row(engine: GenerationEngine) -> None:
    long = GenerationSettings(max_new_tokens=400)
    stream = submit(engine, ask(QUESTIONS[3]), long)
    assert stream.next_delta(timeout=30) is not None
    stream.cancel()
    assert collect(stream).completion_tokens < 400
    deadline = time.monotonic() + 10
    while engine.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert engine.running == 0


def test_a_request_past_its_timeout_fails(engine: GenerationEngine) -> None:
    stream = submit(engine, ask(QUESTIONS[3]), GenerationSettings(max_new_tokens=400), timeout=0.2)
    with pytest.raises(GenerationTimeoutError, match="timeout"):
        collect(stream)


def test_a_full_queue_refuses_with_retry_after(bot) -> None:
    engine = GenerationEngine(load_base(bot, register_gqa_attention()), max_batch=1, max_waiting=2)
    try:
        long = GenerationSettings(max_new_tokens=300)
        streams = [submit(engine, ask(QUESTIONS[0]), long)]
        streams[0].next_delta(timeout=30)  # running: the next two wait
        streams += [submit(engine, ask(q), long) for q in QUESTIONS[1:3]]
        with pytest.raises(EngineBusyError) as refused:
            submit(engine, ask(QUESTIONS[3]), long)
        assert refused.value.retry_after >= 1
        for stream in streams:
            stream.cancel()
    finally:
        engine.close()


def test_a_promoted_version_is_a_new_identity(bot, engine: GenerationEngine) -> None:
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("style", 1)
    first = answer_with(engine, ask("Hi"), GREEDY, AdapterRef("style"))
    assert first.adapter == AdapterRef("style", 1)
    train_adapter(bot, TrainRequest(bot.data_dir / "train.jsonl", name="style", max_steps=2))
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("style", 2)
    second = answer_with(engine, ask("Hi"), GREEDY, AdapterRef("style"))
    assert second.adapter == AdapterRef("style", 2)
    assert {"style@1", "style@2"} <= set(engine.loaded_adapters())


def test_an_answer_writes_only_figures_its_own_sources_hold(bot) -> None:
    """A tiny model made to prefer writing 9, then 4, then 5 to anything else: without
    sources it writes 9s; with sources it writes their figures, each row its own."""
    import torch

    base = load_base(bot, register_gqa_attention())
    tokenizer = base.tokenizer
    bias = torch.zeros(base.model.lm_head.out_features)
    for digit, preference in (("9", 100.0), ("4", 90.0), ("5", 80.0)):
        bias[tokenizer.convert_tokens_to_ids(digit)] = preference
    base.model.lm_head.bias = torch.nn.Parameter(bias, requires_grad=False)
    engine = GenerationEngine(base, max_batch=4)
    try:
        settings = msgspec.structs.replace(GREEDY, max_new_tokens=8, repetition_penalty=1.0)
        free = answer_with(engine, ask("What is the fee?"), settings).text
        assert free.startswith("9999"), free
        streams = {
            figure: submit(
                engine,
                ask("What is the fee?"),
                settings,
                grounding=f"The fee is ${figure} a month.",
            )
            for figure in ("45", "59")
        }
        for figure, stream in streams.items():
            text = collect(stream).text
            written = re.findall(r"\d+", text)
            assert written and set(written) == {figure}, (figure, text)
        off = msgspec.structs.replace(settings, grounded_figures=False)
        unguarded = answer_with(engine, ask("What is the fee?"), off)
        assert unguarded.text == free, "grounded_figures = false leaves the model as it is"
    finally:
        engine.close()
