"""The retrain loop end to end on the sample bot with the embedded models (a real
server, real customers' questions, real ratings and corrections, real training and
evaluation): a simulated week (benchmarks/week.py), then `hybrid retrain` in its own
process. Minutes long, so it runs in `make test-flywheel` (which CI runs too), not in
`make test`."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest
from support import serving, statuses

from benchmarks.week import launch, run_week
from server.app import create_app

pytestmark = pytest.mark.flywheel
# A question the documents answer (one they do not is handed over without an adapter).
QUESTION = "Are return labels free?"


@pytest.fixture(scope="module")
def week_then_retrain(tmp_path_factory: pytest.TempPathFactory):
    """The bot, the week, the retrain's exit status and JSON, and the version the
    still-running server answered with afterwards."""
    bot = launch(tmp_path_factory.mktemp("flywheel") / "kestrel-support")
    with serving(create_app(bot), timeout=600) as url:
        week = run_week(bot, url)
        retrained = subprocess.run(
            [sys.executable, "-m", "hybrid", "-C", str(bot.root), "retrain", "--json"],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "kestrel", "messages": [{"role": "user", "content": QUESTION}]},
            timeout=120,
        )
    assert retrained.returncode in (0, 4), retrained.stderr[-3000:]
    outcome = json.loads(retrained.stdout)
    print(json.dumps(outcome, indent=2))  # the export's counts and the gate report
    return bot, week, retrained.returncode, outcome, reply.json()["model"]


def test_the_week_is_exported_trained_and_judged_and_the_verdict_is_what_serves(
    week_then_retrain,
) -> None:
    bot, week, status, outcome, served = week_then_retrain
    assert sum(week.ratings.values()) == week.asked
    export = outcome["export"]
    assert export["considered"] == week.asked
    assert export["kept"] + sum(export["removed"].values()) == week.asked
    assert export["removed"]["low_rating"] <= week.ratings["1"]
    assert export["removed"]["in_golden_set"] <= 2, "two golden questions were asked"
    assert export["kept"] >= bot.config.retrain.min_new_examples
    assert outcome["candidate"] == "kestrel@2"
    stored = json.loads((bot.adapters_dir / "kestrel/2/gate.json").read_text())
    assert stored["rules"] == outcome["gate"]["rules"]
    assert stored["passed"] == (status == 0) == (outcome["status"] == "promoted")
    active = "kestrel@2" if stored["passed"] else "kestrel@1"
    assert statuses(bot)[active] == "active"
    assert served == active, "the running server answers with what the gate decided"


def test_the_retrained_version_is_better_and_promoted(week_then_retrain) -> None:
    _, _, status, outcome, served = week_then_retrain
    assert status == 0 and outcome["status"] == "promoted" and served == "kestrel@2"
