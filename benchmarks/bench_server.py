"""The server under load, on the real default model: `hybrid serve` in its own process,
the official `openai` client streaming the sample bot's golden questions from 1, 4, 8
and 16 threads at once, each asking again as soon as it has its answer. Figures:
aggregate generated tokens/s at each concurrency in the steady state (and the ratio to
concurrency 1), time to first token, the share of request time spent on
retrieval and prompt building (the server's own /metrics), a batch mixing 4
adapters against the same batch on one adapter, and a short question's latency while a
conversation of 1,000 messages (a prompt filling the context) is being answered, against
the same question alone.

The 4 adapters are trained for one step at a negligible learning rate: they cost what
any adapter costs, but answer token for token as the base model does, so the mixed and
single batches generate exactly the same tokens and their times compare directly."""

from __future__ import annotations

import concurrent.futures
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks.common import Figure, hybrid_serve, with_settings
from hybrid.bot import Bot, init_bot
from indexes import embedder_for_bot, sync_index
from training import AdapterRegistry, TrainRequest, train_adapter

CONCURRENCY = (1, 4, 8, 16)
ANSWER_TOKENS = 128
WARMUP_SECONDS = 15.0
WINDOW_SECONDS = 60.0
ADAPTERS = ("a1", "a2", "a3", "a4")


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        sync_index(bot, embedder_for_bot(bot))
        publish_inert_adapters(bot)
        with hybrid_serve(bot) as url:
            return _measure(url, golden_questions(bot), bot.config.models.base)


def golden_questions(bot: Bot) -> list[str]:
    return [
        json.loads(line)["question"]
        for line in (bot.data_dir / "golden.jsonl").read_text().splitlines()
        if line.strip()
    ]


def _measure(url: str, questions: list[str], base: str) -> list[Figure]:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=600)
    ask(client, questions[0], ADAPTERS[0], 0)  # loads an adapter, warms up
    figures: list[Figure] = []
    rates: dict[int, float] = {}
    first_tokens: dict[int, list[float]] = {}
    before = _prompt_building(url)
    latency_sum, requests = 0.0, 0
    for concurrency in CONCURRENCY:
        results, tokens = steady_state(
            lambda question: ask(client, question, base, 0.7), questions, concurrency
        )
        rates[concurrency] = tokens / WINDOW_SECONDS
        first_tokens[concurrency] = [r["first_token"] for r in results if r["in_window"]]
        latency_sum += sum(r["seconds"] for r in results)
        requests += len(results)
        figures.append(
            Figure(
                f"throughput at concurrency {concurrency}",
                round(rates[concurrency], 1),
                "tokens/s",
                f"{tokens:.0f} tokens in a {WINDOW_SECONDS:.0f} s window after "
                f"{WARMUP_SECONDS:.0f} s of warm-up; {len(results)} requests in all",
            )
        )
    for concurrency in CONCURRENCY[1:]:
        figures.append(
            Figure(
                f"concurrency {concurrency} / concurrency 1",
                round(rates[concurrency] / rates[1], 2),
                "x",
                "aggregate tokens/s, same run" + ("; target >= 4" if concurrency == 8 else ""),
            )
        )
    for concurrency in (1, 8):
        times = sorted(first_tokens[concurrency])
        figures += [
            Figure(
                f"time to first token p50, concurrency {concurrency}",
                round(statistics.median(times) * 1000),
                "ms",
                f"{len(times)} requests sent in the window",
            ),
            Figure(
                f"time to first token p99, concurrency {concurrency}",
                round(percentile(times, 0.99) * 1000),
                "ms",
                f"{len(times)} requests sent in the window (nearest rank)",
            ),
        ]
    building_seconds, building_count = (
        a - b for a, b in zip(_prompt_building(url), before, strict=True)
    )
    figures.append(
        Figure(
            "retrieval + prompt building share of request time",
            round(100 * building_seconds / latency_sum, 2),
            "%",
            f"{building_count} requests, {1000 * building_seconds / building_count:.0f} ms "
            f"each of {1000 * latency_sum / requests:.0f} ms mean latency; target < 5",
        )
    )
    figures += mixed_adapters(lambda q, model, t: ask(client, q, model, t), questions)
    figures += _beside_a_long_prompt(client, questions[0], base)
    return figures


def steady_state(
    ask_one: Callable[[str], dict],
    questions: list[str],
    concurrency: int,
    warmup: float = WARMUP_SECONDS,
    window_seconds: float = WINDOW_SECONDS,
) -> tuple[list[dict], float]:
    """`concurrency` clients asking one question after another (`ask_one`, as `ask`
    does); the tokens generated in a window after a warm-up (so neither the ramp-up nor
    the last stragglers count), each request's tokens spread evenly from its first token
    to its end."""
    start = time.perf_counter()
    window = (start + warmup, start + warmup + window_seconds)

    def client_loop(number: int) -> list[dict]:
        done, asked = [], number
        while time.perf_counter() < window[1]:
            sent = time.perf_counter()
            result = ask_one(questions[asked % len(questions)])
            result["sent"] = sent
            result["span"] = (sent + result["first_token"], sent + result["seconds"])
            done.append(result)
            asked += concurrency
        return done

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        results = [r for batch in pool.map(client_loop, range(concurrency)) for r in batch]
    tokens = 0.0
    for result in results:
        first, end = result["span"]
        overlap = min(end, window[1]) - max(first, window[0])
        if overlap > 0 and end > first:
            tokens += result["tokens"] * overlap / (end - first)
        result["in_window"] = window[0] <= result["sent"] < window[1]
    return results, tokens


def mixed_adapters(
    ask_with: Callable[[str, str, float], dict], questions: list[str]
) -> list[Figure]:
    """8 greedy requests at once (`ask_with(question, model, temperature)`): all on one
    adapter, then over 4; with all 4 loaded first, so only the mixing differs; 3 rounds
    taking turns, the best of each."""
    asked = questions[:8]
    for name in ADAPTERS:
        ask_with(asked[0], name, 0.0)

    def batch(adapters: list[str]) -> tuple[float, int]:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(len(asked)) as pool:
            results = list(
                pool.map(lambda qa: ask_with(*qa, 0.0), zip(asked, adapters, strict=True))
            )
        return time.perf_counter() - started, sum(r["tokens"] for r in results)

    one = [ADAPTERS[0]] * len(asked)
    mixed = [ADAPTERS[i % len(ADAPTERS)] for i in range(len(asked))]
    rounds = [(batch(one), batch(mixed)) for _ in range(3)]
    single, single_tokens = min(single for single, _ in rounds)
    mixed_time, mixed_tokens = min(mixed for _, mixed in rounds)
    return [
        Figure("batch of 8 on one adapter", round(single, 2), "s", f"{single_tokens} tokens"),
        Figure("batch of 8 over 4 adapters", round(mixed_time, 2), "s", f"{mixed_tokens} tokens"),
        Figure(
            "4 adapters / 1 adapter",
            round(mixed_time / single, 2),
            "x",
            "same tokens, same run; target <= 1.3",
        ),
    ]


def _beside_a_long_prompt(client, question: str, base: str) -> list[Figure]:
    """A 4-token answer to `question` alone (best of 3), then sent 0.5 s after a
    conversation of 1,000 short messages that fills the model's context."""
    short = [{"role": "user", "content": question}]
    alone = min(_latency(client, base, short) for _ in range(3))
    turns = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"Message {n} about my order."}
        for n in range(999)
    ]
    long = [*turns, {"role": "user", "content": question}]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        started = time.perf_counter()
        pending = pool.submit(_latency, client, base, long)
        time.sleep(0.5)
        beside = _latency(client, base, short)
        long_seconds = pending.result()
    return [
        Figure("short request alone", round(alone, 2), "s", "4 answer tokens, best of 3"),
        Figure(
            "short request beside a context-filling prompt",
            round(beside, 2),
            "s",
            f"sent 0.5 s after 1,000 messages; that request took {long_seconds:.1f} s "
            f"({time.perf_counter() - started:.1f} s in all)",
        ),
        Figure(
            "short request: beside / alone",
            round(beside / alone, 2),
            "x",
            "same run; a long prompt is prefilled in chunks, shortest remaining first",
        ),
    ]


def _latency(client, model: str, messages: list[dict]) -> float:
    started = time.perf_counter()
    client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=0)
    return time.perf_counter() - started


def ask(client, question: str, model: str, temperature: float) -> dict:
    """One streamed request: its time to first token, its length and its latency."""
    started = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=ANSWER_TOKENS,
        temperature=temperature,
        seed=7,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    seconds = time.perf_counter() - started
    return {"first_token": first or seconds, "tokens": tokens, "seconds": seconds}


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, max(0, round(share * len(values)) - 1))]


def _prompt_building(url: str) -> tuple[float, float]:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    values = {
        line.split()[0]: float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("hybrid_prompt_building_seconds")
    }
    return (
        values["hybrid_prompt_building_seconds_sum"],
        values["hybrid_prompt_building_seconds_count"],
    )


def publish_inert_adapters(bot: Bot) -> None:
    quiet = with_settings(bot, "training", learning_rate=1e-12)
    for name in ADAPTERS:
        train_adapter(quiet, TrainRequest(bot.data_dir / "train.jsonl", name=name, max_steps=1))
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        for name in ADAPTERS:
            registry.promote(name, 1)
