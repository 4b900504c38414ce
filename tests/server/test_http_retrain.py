"""The server retrains on its own schedule: a retrain job with an event per stage, seen
through the official client's fine-tuning API; the promotion is seen by the next chat
request; and when the promoted version's ratings fall, the server rolls back by itself
and records why (a job event, a metric, the registry)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
from support import OPEN_GATE, flywheel_bot, serving, statuses

from hybrid import Bot
from server.app import create_app
from server.flywheel.retrain import retrain


def ask(client: openai.OpenAI) -> openai.types.chat.ChatCompletion:
    messages = [{"role": "user", "content": "Can I return a tent I used once?"}]
    return client.chat.completions.create(model="kestrel", messages=messages, max_tokens=4)


def test_a_scheduled_retrain_promotes_and_falling_ratings_roll_it_back(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir, schedule="daily", watch_ratings=3,
                       **OPEN_GATE)  # fmt: skip
    with serving(create_app(bot)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        deadline = time.monotonic() + 300
        while True:
            jobs = [job for job in client.fine_tuning.jobs.list() if job.status == "succeeded"]
            if jobs:
                break
            assert time.monotonic() < deadline, "the scheduled retrain never finished"
            time.sleep(0.5)
        (job,) = jobs
        assert job.metadata == {"kind": "retrain", "schedule": "daily"}
        assert job.fine_tuned_model == "kestrel@2"
        events = [event.message for event in client.fine_tuning.jobs.list_events(job.id)]
        for stage in ("export", "data", "lint", "train", "evaluate", "gate", "promote"):
            assert f"{stage}: started" in events, f"no event for the {stage} stage"
        assert "promoted: the gate passed, kestrel@2 replaces kestrel@1" in events
        assert ask(client).model == "kestrel@2", "the next request sees the promotion"

        # kestrel@1's answers were rated 5; kestrel@2's first three get a 1 each.
        for _ in range(3):
            rated = httpx.post(
                f"{url}/v1/feedback", json={"completion_id": ask(client).id, "rating": 1}
            )
            assert rated.status_code == 201
        assert statuses(bot) == {"kestrel@1": "active", "kestrel@2": "candidate"}
        assert ask(client).model == "kestrel@1"
        events = [event.message for event in client.fine_tuning.jobs.list_events(job.id)]
        assert events[0].startswith("rolled back to kestrel@1: mean rating 1.00 of its first 3")
        assert "hybrid_adapter_auto_rollbacks 1\n" in httpx.get(f"{url}/metrics").text
        assert len(list(client.fine_tuning.jobs.list())) == 1, "one retrain per day"

    # The same conversations would train the same version again: the loop stops there.
    again = retrain(Bot.open(bot.root))
    assert again.status == "nothing_to_do" and again.candidate is None
    assert set(statuses(bot)) == {"kestrel@1", "kestrel@2"}
