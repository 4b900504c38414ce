"""A simulated week of a support bot, shared by the flywheel test and its benchmark.

The bot launches with kestrel@1, trained on a small seed set (the first SEED_SIZE sample
conversations, as served: with retrieval). During the week customers ask the questions
of all the other sample conversations through the real server (about 40 a day), plus
two questions of the golden set and one question asked twice. A support agent reviews
every answer against the sample's answer for it: an answer that says what the sample
answer says (all its figures, and at least half of it: ROUGE-L >= 0.5), in the format,
and not a wrong hand-over gets a 5; otherwise two of three get a 2 with the sample
answer as the correction, and the third a 1 without one.
"""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from hybrid.bot import Bot, init_bot
from hybrid.config import write_setting
from indexes import embedder_for_bot, open_retriever, sync_index
from training import AdapterRegistry, TrainRequest, train_adapter
from training.evaluation import figures, format_problems, is_handover, missing_facts, rouge_l

SEED_SIZE = 40
AT_ONCE = 8  # customers asking at the same time
# An answer with every figure but nothing else ("Hi there! Policy: Shipping") says
# nothing: the agent wants at least half of the sample answer (ROUGE-L).
SAYS_IT = 0.5


@dataclass
class Week:
    asked: int = 0
    ratings: Counter[str] = field(default_factory=Counter)  # "5", "2 + correction", "1"


def launch(folder: Path) -> Bot:
    """The sample bot with kestrel@1 (trained on the seed set) active, and the seed set
    as the replay data of every retrain."""
    bot = init_bot(folder)
    lines = (bot.data_dir / "train.jsonl").read_text().splitlines()
    (bot.data_dir / "seed.jsonl").write_text("\n".join(lines[:SEED_SIZE]) + "\n")
    write_setting(bot.config_file, "retrain", "replay", "data/seed.jsonl")
    bot = Bot.open(folder)
    sync_index(bot, embedder_for_bot(bot))
    retriever = open_retriever(bot)
    request = TrainRequest(
        bot.data_dir / "seed.jsonl",
        name="kestrel",
        retriever=retriever,
        index_version=retriever.version(),
    )
    train_adapter(bot, request)
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("kestrel", 1)
    return bot


def customer_questions(bot: Bot) -> list[tuple[str, str]]:
    """(question, the sample answer a support agent would give) for the week."""
    lines = (bot.data_dir / "train.jsonl").read_text().splitlines()
    week = []
    for line in lines[SEED_SIZE:]:
        messages = json.loads(line)["messages"]
        week.append((messages[-2]["content"], messages[-1]["content"]))
    golden = [json.loads(line) for line in (bot.data_dir / "golden.jsonl").read_text().splitlines()]
    week += [(case["question"], case["reference"]) for case in golden[:2]]
    return [*week, week[0]]


def run_week(bot: Bot, url: str) -> Week:
    """Ask every customer question through the server, AT_ONCE at a time, and give each
    answer the agent's rating (and correction)."""
    questions = customer_questions(bot)
    week = Week(asked=len(questions))
    with httpx.Client(base_url=url, timeout=600) as client:

        def ask(number: int) -> None:
            question, expected = questions[number]
            reply = client.post(
                "/v1/chat/completions",
                json={"model": "kestrel", "messages": [{"role": "user", "content": question}]},
            )
            reply.raise_for_status()
            completion = reply.json()
            answer = completion["choices"][0]["message"]["content"]
            rating, correction = _review(bot, answer, expected, number)
            feedback = {"completion_id": completion["id"], "rating": rating}
            if correction:
                feedback["corrected_answer"] = correction
            client.post("/v1/feedback", json=feedback).raise_for_status()
            week.ratings[f"{rating}{' + correction' if correction else ''}"] += 1

        with ThreadPoolExecutor(AT_ONCE) as pool:
            list(pool.map(ask, range(len(questions))))
    return week


def _review(bot: Bot, answer: str, expected: str, number: int) -> tuple[int, str | None]:
    handover = bot.config.bot.handover
    wanted_handover = is_handover(expected, handover)
    right = (
        not missing_facts(answer, sorted(figures(expected)))
        and rouge_l(answer, expected) >= SAYS_IT
        and is_handover(answer, handover) == wanted_handover
        and (wanted_handover or not format_problems(answer, bot.config.evaluation))
    )
    if right:
        return 5, None
    return (2, expected) if number % 3 != 2 else (1, None)
