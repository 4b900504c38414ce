"""hybrid's own generation engine against vLLM's CPU build, on the same machine, model,
adapters and prompts, in one run; then hybrid composing with vLLM as its generator.

Three arms, one after the other (never two on the 2 cores at once):
- hybrid engine: `hybrid serve` with its own engine, asked through its chat endpoint;
- vLLM: a vLLM server (started with `hybrid vllm command`'s line) asked directly on its
  completions endpoint with the very prompts hybrid builds (token ids: system prompt,
  retrieved sources, question);
- hybrid on vLLM: `hybrid serve` with `[models] generator = "vllm"`, asked as the first.
Each: aggregate generated tokens/s at concurrency 1 and 8 in the steady state, time to
first token p50/p99, and 8 requests over 4 adapters against 8 on one (benchmarks/
bench_server.py). What hybrid adds on top of vLLM per request (retrieval, the prompt,
the log, its own HTTP hop) is the mean latency at concurrency 1 through hybrid against
vLLM's own, as a share of the former."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from benchmarks.bench_server import (
    ADAPTERS,
    ANSWER_TOKENS,
    ask,
    golden_questions,
    mixed_adapters,
    percentile,
    publish_inert_adapters,
    steady_state,
)
from benchmarks.common import Figure, hybrid_serve, with_settings
from hybrid.bot import Bot, init_bot
from hybrid.config import write_setting
from indexes import embedder_for_bot, sync_index
from server.compose import compose
from server.vllm_command import VllmProcess

CONCURRENCY = (1, 8)
WARMUP_SECONDS = 10.0
WINDOW_SECONDS = 45.0
VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


def run() -> list[Figure]:
    import socket

    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        write_setting(bot.config_file, "vllm", "url", f"http://127.0.0.1:{port}")
        bot = Bot.open(bot.root)
        sync_index(bot, embedder_for_bot(bot))
        publish_inert_adapters(bot)
        prompts = _prompts(bot, golden_questions(bot))
        questions = list(prompts)  # those the model answers (the others are handed over)
        base = bot.config.models.base
        with hybrid_serve(bot) as url:
            local = _arm("hybrid engine", _chat(url), questions, base)
        vllm = VllmProcess(bot, VLLM_PYTHON, Path(scratch) / "vllm.log")
        vllm.start()
        try:
            asked = _completions(vllm.url, prompts, bot.config.generation.repetition_penalty)
            direct = _arm("vLLM", asked, questions, base)
            write_setting(bot.config_file, "models", "generator", "vllm")
            with hybrid_serve(Bot.open(bot.root)) as url:
                composed = _arm("hybrid on vLLM", _chat(url), questions, base)
        finally:
            vllm.kill()
    figures = [*local.figures, *direct.figures, *composed.figures]
    for concurrency in CONCURRENCY:
        figures.append(
            Figure(
                f"hybrid engine / vLLM, tokens/s at concurrency {concurrency}",
                round(local.rates[concurrency] / direct.rates[concurrency], 2),
                "x",
                "same run, same prompts; goal at concurrency 8: >= 1",
            )
        )
    overhead = 1 - direct.latency / composed.latency
    figures += [
        Figure(
            "hybrid's share of latency on vLLM",
            round(100 * overhead, 1),
            "%",
            f"mean latency at concurrency 1: {composed.latency * 1000:.0f} ms through hybrid, "
            f"{direct.latency * 1000:.0f} ms asking vLLM directly "
            f"({composed.tokens:.0f} and {direct.tokens:.0f} tokens per answer); target < 5",
        ),
        Figure(
            "added before the first token on vLLM",
            round((composed.first_token - direct.first_token) * 1000),
            "ms",
            "median time to first token at concurrency 1, through hybrid minus directly",
        ),
        # The mean latencies above also differ by how long the sampled answers are; the
        # first token is where hybrid's own work (retrieval, the prompt) shows alone.
        Figure(
            "hybrid's time before the first token, share of latency on vLLM",
            round(100 * (composed.first_token - direct.first_token) / composed.latency, 1),
            "%",
            "the figure above ÷ the mean latency through hybrid, concurrency 1; target < 5",
        ),
    ]
    return figures


class _Arm:
    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.rates: dict[int, float] = {}
        # At concurrency 1: mean seconds and tokens per request, median first token.
        self.latency = self.tokens = self.first_token = 0.0


def _arm(
    label: str, ask_with: Callable[[str, str, float], dict], questions: list[str], base: str
) -> _Arm:
    arm = _Arm()
    ask_with(questions[0], base, 0.0)  # warms up
    for concurrency in CONCURRENCY:
        results, tokens = steady_state(
            lambda question: ask_with(question, base, 0.7),
            questions,
            concurrency,
            WARMUP_SECONDS,
            WINDOW_SECONDS,
        )
        arm.rates[concurrency] = tokens / WINDOW_SECONDS
        counted = [r for r in results if r["in_window"]]
        first = sorted(r["first_token"] for r in counted)
        if concurrency == 1:
            arm.latency = statistics.mean(r["seconds"] for r in counted)
            arm.tokens = statistics.mean(r["tokens"] for r in counted)
            arm.first_token = statistics.median(first)
        arm.figures += [
            Figure(
                f"{label}: tokens/s at concurrency {concurrency}",
                round(arm.rates[concurrency], 1),
                "tokens/s",
                f"{tokens:.0f} tokens in a {WINDOW_SECONDS:.0f} s window; "
                f"{len(results)} requests in all",
            ),
            Figure(
                f"{label}: time to first token p50 / p99, concurrency {concurrency}",
                round(statistics.median(first) * 1000),
                "ms",
                f"p99 {percentile(first, 0.99) * 1000:.0f} ms; {len(first)} requests",
            ),
        ]
    mixed = mixed_adapters(ask_with, questions)
    arm.figures += [
        Figure(f"{label}: {figure.name}", figure.value, figure.unit, figure.note)
        for figure in mixed
    ]
    return arm


def _chat(url: str) -> Callable[[str, str, float], dict]:
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=600)
    return lambda question, model, temperature: ask(client, question, model, temperature)


def _prompts(bot: Bot, questions: list[str]) -> dict[str, list[int]]:
    """The token ids hybrid sends for each question the model answers: its prompt,
    sources included (a question handed over without the model has none)."""
    parts = compose(with_settings(bot, "models", generator="vllm"), retrieval=True)
    try:
        prompts = {question: parts.assistant.prepare(question) for question in questions}
    finally:
        parts.generator.close()
    return {q: list(p.token_ids) for q, p in prompts.items() if p.token_ids and not p.handover}


def _completions(
    url: str, prompts: dict[str, list[int]], repetition_penalty: float
) -> Callable[[str, str, float], dict]:
    """One streamed request to vLLM's completions endpoint, measured as `ask` measures,
    with the sampling settings hybrid sends (so a seeded answer is the same tokens)."""
    client = httpx.Client(base_url=url, timeout=600)

    def ask_vllm(question: str, model: str, temperature: float) -> dict:
        started = time.perf_counter()
        first, tokens = None, 0
        body = {
            "model": f"{model}@1" if model in ADAPTERS else model,  # as vLLM serves them
            "prompt": prompts[question],
            "max_tokens": ANSWER_TOKENS,
            "temperature": temperature,
            "top_p": 1.0,
            "repetition_penalty": repetition_penalty,
            "seed": 7,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with client.stream("POST", "/v1/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data: {"):
                    continue
                event = json.loads(line[6:])
                if first is None and any(c.get("text") for c in event.get("choices") or []):
                    first = time.perf_counter() - started
                if event.get("usage"):
                    tokens = event["usage"]["completion_tokens"]
        seconds = time.perf_counter() - started
        return {"first_token": first or seconds, "tokens": tokens, "seconds": seconds}

    return ask_vllm
