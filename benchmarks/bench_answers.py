"""Right answers, measured as `hybrid eval` measures them, on the sample bot's whole
golden set with the embedded SmolLM2-135M: key facts stated, answers with an invented
figure, hand-over recall and false hand-overs, format adherence, ROUGE-L, prompt tokens
and latency, for the base model and the prompt-first baseline, both with retrieval, and
for the style adapter `make run` trains, trained with retrieval (as served: each question
with the sources the retriever finds) and without it, both served with retrieval. The
base model is also measured with whole chunks as sources (retrieval.sentences = 0)
against the sample's focused sources. Then evaluation throughput: the same questions
batched (the engine's continuous batching) against one by one; and decoding speed with
the figure constraint against without it, same questions."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, with_settings
from hybrid.bot import Bot, init_bot
from hybrid.types import AdapterRef
from indexes import embedder_for_bot, open_retriever, sync_index
from server.evaluation import evaluate, read_golden
from training import TrainRequest, train_adapter

VARIANTS = ["base+rag", "prompt+rag"]
THROUGHPUT_QUESTIONS = 16


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        sync_index(bot, embedder_for_bot(bot))
        cases = read_golden(bot.data_dir / "golden.jsonl")
        figures = []
        for score in evaluate(bot, cases, VARIANTS):
            figures += _quality(score.summary())
        whole_chunks = with_settings(bot, "retrieval", sentences=0)
        (score,) = evaluate(whole_chunks, cases, ["base+rag"])
        figures += _quality(score.summary(), "base+rag, whole chunks")
        for label, retriever in (
            ("with retrieval", open_retriever(bot)),
            ("without retrieval", None),
        ):
            # As `make run` trains it: the sample's data and [training] settings.
            name = "served" if retriever else "plain"
            request = TrainRequest(
                bot.data_dir / "train.jsonl",
                name=name,
                retriever=retriever,
                index_version=retriever.version() if retriever else None,
            )
            trained = train_adapter(bot, request).adapter
            adapter = AdapterRef(trained.name, trained.version)
            (score,) = evaluate(bot, cases, ["adapter+rag"], adapter=adapter)
            figures += _quality(score.summary(), f"adapter trained {label}, +rag")
        subset = cases[:THROUGHPUT_QUESTIONS]
        timed = {}
        for name, at_once in (("batched", None), ("one by one", 1)):
            started = time.perf_counter()
            evaluate(bot, subset, ["base+rag"], at_once=at_once)
            timed[name] = time.perf_counter() - started
        speeds = {grounded: _decoding_speed(bot, subset, grounded) for grounded in (True, False)}
    note = f"the first {len(subset)} golden questions, base+rag, model loading included"
    return [
        *figures,
        Figure("evaluation, batched", round(timed["batched"], 1), "s", note),
        Figure("evaluation, one by one", round(timed["one by one"], 1), "s", note),
        Figure(
            "evaluation throughput, batched / one by one",
            round(timed["one by one"] / timed["batched"], 2),
            "x",
            "same questions, same run; target >= 3",
        ),
        Figure(
            "decoding with the figure constraint / without",
            round(speeds[True] / speeds[False], 3),
            "x",
            f"{speeds[True]:.1f} / {speeds[False]:.1f} tokens/s over the same {len(subset)} "
            "questions batched (base+rag); target > 0.9",
        ),
    ]


def _decoding_speed(bot: Bot, cases: list, grounded: bool) -> float:
    """Completion tokens per second of answering `cases` together, base+rag."""
    configured = with_settings(bot, "generation", grounded_figures=grounded)
    (score,) = evaluate(configured, cases, ["base+rag"])
    tokens = sum(answer["completion_tokens"] or 0 for answer in score.answers)
    return tokens / score.seconds


def _quality(summary: dict, variant: str | None = None) -> list[Figure]:
    variant = variant or summary["variant"]
    shares = (
        ("key facts stated", "key_facts", "of answerable questions; target >= 90%"),
        ("answers with an invented figure", "invented_figures", "of all answers; target 0"),
        ("unanswerable questions handed over", "handover_recall", "target >= 90%"),
        ("answerable questions handed over", "answerable_handed_over", "target <= 5%"),
        ("format adherence", "format_adherence", "the [evaluation] rules"),
    )
    figures = [
        Figure(
            f"{variant}: {label}",
            round(100 * (summary[key]["share"] or 0), 1),
            "%",
            f"{summary[key]['count']}/{summary[key]['of']} {note}",
        )
        for label, key, note in shares
    ]
    figures += [
        Figure(f"{variant}: ROUGE-L", summary["rouge_l"], "", "answerable questions, mean"),
        Figure(f"{variant}: prompt tokens", summary["prompt_tokens"], "tokens", "per request"),
        Figure(f"{variant}: latency", summary["seconds_per_answer"], "s", "per answer, batched"),
    ]
    return figures
