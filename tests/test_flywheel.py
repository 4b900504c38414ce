"""The retrain loop end to end on the sample bot with the embedded models (a real
server, real customers' questions, real ratings and corrections, real training and
evaluation): a simulated week (benchmarks/week.py) turns into a better adapter that the
gate promotes and the running server then answers with. Minutes long, so it runs in
`make test-flywheel` (which CI runs too), not in `make test`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import serving, statuses

from benchmarks.week import launch, run_week
from server.app import create_app

pytestmark = pytest.mark.flywheel


def test_a_simulated_week_is_retrained_into_a_version_the_gate_promotes(tmp_path: Path) -> None:
    bot = launch(tmp_path / "kestrel-support")
    with serving(create_app(bot), timeout=600) as url:
        week = run_week(bot, url)
        assert sum(week.ratings.values()) == week.asked
        retrained = subprocess.run(
            [sys.executable, "-m", "hybrid", "-C", str(bot.root), "retrain", "--json"],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        outcome = json.loads(retrained.stdout)
        print(json.dumps(outcome, indent=2))  # the export's counts and the gate report
        export = outcome["export"]
        assert export["considered"] == week.asked
        assert export["kept"] + sum(export["removed"].values()) == week.asked
        assert export["removed"]["low_rating"] <= week.ratings["1"]
        assert export["kept"] >= bot.config.retrain.min_new_examples
        assert retrained.returncode == 0, retrained.stderr[-3000:]
        assert outcome["status"] == "promoted" and outcome["candidate"] == "kestrel@2"
        stored = json.loads((bot.adapters_dir / "kestrel/2/gate.json").read_text())
        assert stored["passed"] and all(rule["passed"] for rule in stored["rules"])
        assert statuses(bot) == {"kestrel@1": "retired", "kestrel@2": "active"}
        reply = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "kestrel", "messages": [{"role": "user", "content": "Hi"}]},
            timeout=120,
        )
        assert reply.json()["model"] == "kestrel@2", "the running server answers with it"
