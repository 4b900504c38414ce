"""`hybrid retrain` on the tiny model: every stage runs for real (export from a real log,
training, evaluation of candidate and active side by side, the gate), the verdict is
stored with the candidate, only a passing candidate is promoted, one run at a time, and
kill -9 at any stage leaves the active version serving and the next run recovers."""

from __future__ import annotations

import fcntl
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from support import OPEN_GATE, flywheel_bot, statuses
from typer.testing import CliRunner

from hybrid import Bot
from hybrid.cli.app import app
from hybrid.config import write_setting
from hybrid.types import AdapterRef
from server.flywheel.retrain import retrain
from training import AdapterRegistry

KILL_RETRAIN = Path(__file__).with_name("kill_retrain.py")
SAMPLE = Path(__file__).resolve().parents[2] / "hybrid/templates/support/data"


def run_cli(bot: Bot, *args: str):
    return CliRunner().invoke(app, ["-C", str(bot.root), "retrain", *args])


def test_the_gate_rejects_keeps_its_verdict_and_then_has_nothing_to_do(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir)
    result = run_cli(bot, "--json")
    assert result.exit_code == 4, result.output
    outcome = json.loads(result.stdout)
    assert outcome["status"] == "rejected" and outcome["candidate"] == "kestrel@2"
    failed = [rule["name"] for rule in outcome["gate"]["rules"] if not rule["passed"]]
    # Random tiny models: neither answers anything right, so the candidate cannot show a
    # win rate above one half.
    assert "win_rate" in failed
    export = outcome["export"]
    assert export["considered"] == 12 and export["kept"] + sum(export["removed"].values()) == 12
    assert set(outcome["seconds"]) == {"export", "data", "lint", "train", "evaluate", "gate"}
    assert statuses(bot) == {"kestrel@1": "active", "kestrel@2": "candidate"}
    folder = bot.adapters_dir / "kestrel" / "2"
    stored = json.loads((folder / "gate.json").read_text())
    assert stored["passed"] is False and stored["comparison"]["candidate"] == "candidate"
    assert len(stored["comparison"]["questions"]) == 9
    assert "Gate failed" in (folder / "gate.html").read_text()

    again = run_cli(bot)  # the same data: the verdict stands, nothing is trained again
    assert again.exit_code == 4 and "win_rate" in again.output
    assert statuses(bot) == {"kestrel@1": "active", "kestrel@2": "candidate"}
    assert json.loads((folder / "gate.json").read_text())["judged_at"] == stored["judged_at"]
    # A verdict an earlier hybrid stored under older rules is not trusted: judged again.
    stored["judged_by"]["rules"] -= 1
    (folder / "gate.json").write_text(json.dumps(stored))
    assert run_cli(bot).exit_code == 4
    rejudged = json.loads((folder / "gate.json").read_text())
    assert rejudged["judged_at"] > stored["judged_at"]
    assert rejudged["judged_by"]["rules"] == stored["judged_by"]["rules"] + 1

    manifest = json.loads((folder / "hybrid-adapter.json").read_text())
    assert manifest["started_from"] == "kestrel@1", "a warm start, by default"
    snapshot = bot.state_dir / "datasets" / manifest["dataset"] / "manifest.json"
    lineage = json.loads(snapshot.read_text())
    assert lineage["parent"] == "kestrel@1" and lineage["replay_examples"] == 16
    assert lineage["examples"] == 16 + export["kept"] and len(lineage["logs"]) == 1


def test_a_passing_candidate_is_promoted_and_the_next_run_has_nothing_to_do(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir)
    assert run_cli(bot).exit_code == 4, "rejected by the default gate"
    for setting, value in OPEN_GATE.items():
        write_setting(bot.config_file, "retrain", setting, value)
    result = run_cli(bot)  # the same candidate, judged again under the opened gate
    assert result.exit_code == 0, result.output
    assert "kestrel@2 replaces kestrel@1" in result.output
    assert statuses(bot) == {"kestrel@1": "retired", "kestrel@2": "active"}
    result = run_cli(bot, "--json")
    assert result.exit_code == 3, "no new conversation since kestrel@2's data"
    assert json.loads(result.stdout)["status"] == "nothing_to_do"


def test_a_version_with_other_lora_layers_is_not_continued_the_candidate_starts_afresh(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir)
    write_setting(bot.config_file, "training", "lora_r", 8)
    result = run_cli(bot)
    assert result.exit_code == 4, result.output
    assert "starting from the base model: kestrel@1 cannot be continued" in result.output
    assert "training.lora_r is 8, it was trained with 16" in result.output
    manifest = json.loads((bot.adapters_dir / "kestrel/2/hybrid-adapter.json").read_text())
    assert manifest["started_from"] is None and manifest["hyperparameters"]["lora_r"] == 8


def test_one_retrain_at_a_time(tmp_path: Path, tiny_model_dir: Path) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir)
    with open(bot.state_dir / "retrain.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        result = run_cli(bot)
    assert result.exit_code == 5 and "already running (pid 4242)" in result.output
    assert statuses(bot) == {"kestrel@1": "active"}


@pytest.mark.parametrize(
    ("stage", "target", "on_call"),
    [
        ("export", "server.flywheel.curation:write_snapshot", 1),
        ("training", "training.recipe:_train_step", 3),
        ("evaluation", "server.evaluation:_scored", 5),
        ("the promotion's watch", "server.flywheel.watch:PromotionWatch.start", 1),
        ("promotion", "training.registry:AdapterRegistry.promote", 1),
    ],
)
def test_kill_9_at_any_stage_keeps_the_active_version_and_the_next_run_recovers(
    tmp_path: Path, tiny_model_dir: Path, stage: str, target: str, on_call: int
) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir, **OPEN_GATE)
    killed = subprocess.run(
        [sys.executable, str(KILL_RETRAIN), str(bot.root), target, str(on_call)],
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9, killed.stderr
    before = statuses(bot)
    assert before["kestrel@1"] == "active", f"killed in {stage}: the active version serves"
    assert set(before.values()) <= {"active", "candidate"}, "nothing half-built is listed"
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        assert registry.get(AdapterRef("kestrel")).version == 1

    outcome = retrain(Bot.open(bot.root))
    assert outcome.status == "promoted" and outcome.candidate == AdapterRef("kestrel", 2)
    assert statuses(bot) == {"kestrel@1": "retired", "kestrel@2": "active"}
    if stage not in ("export", "training"):
        assert "train" in outcome.seconds and outcome.seconds["train"] < 5, "reused, not retrained"
    with sqlite3.connect(bot.database) as db:
        watched = db.execute("SELECT version FROM promotion_watch WHERE status = 'watching'")
        assert watched.fetchall() == [(2,)], "the promotion is watched, once"


def test_eval_compare_shows_the_verdict_the_gate_acts_on(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir)
    assert run_cli(bot).exit_code == 4
    golden = str(bot.data_dir / "small-golden.jsonl")
    args = ["-C", str(bot.root), "eval", golden, "--adapter", "kestrel@2", "--compare", "kestrel"]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    stored = json.loads((bot.adapters_dir / "kestrel" / "2" / "gate.json").read_text())
    assert (verdict["candidate"], verdict["active"]) == ("kestrel@2", "kestrel@1")
    assert verdict["comparison"]["questions"] == stored["comparison"]["questions"]
    assert verdict["rules"] == stored["rules"], "the same answers, the same verdict"
    counts = [verdict["comparison"][kind] for kind in ("wins", "ties", "losses")]
    assert sum(counts) == 9
    assert list(verdict["summaries"]) == [
        "candidate", "active", "base on the probe", "candidate on the probe"
    ]  # fmt: skip

    text = CliRunner().invoke(app, [*args, "--limit", "3"])
    assert (
        text.exit_code == 0 and "on 3 questions" in text.output and "FAIL  win_rate" in text.output
    )
    missing = CliRunner().invoke(app, ["-C", str(bot.root), "eval", golden, "--compare", "kestrel"])
    assert missing.exit_code == 2 and "--compare needs --adapter" in missing.output


def test_a_judge_that_gives_no_verdict_fails_the_gate(tmp_path: Path, tiny_model_dir: Path) -> None:
    import socket

    bot = flywheel_bot(tmp_path / "bot", tiny_model_dir, **OPEN_GATE)
    with socket.socket() as closed:  # a port nothing listens on: the judge is down
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    text = bot.config_file.read_text()
    bot.config_file.write_text(
        text.replace("[retrain]", f'[evaluation.judge]\nurl = "http://127.0.0.1:{port}/v1"\n'
                     'model = "judge"\ntimeout = 5.0\n\n[retrain]', 1)
    )  # fmt: skip
    result = run_cli(bot, "--json")
    assert result.exit_code == 4, result.output
    rules = {rule["name"]: rule for rule in json.loads(result.stdout)["gate"]["rules"]}
    assert not rules["judge"]["passed"] and "no usable verdict" in rules["judge"]["detail"]
    assert all(rule["passed"] for name, rule in rules.items() if name != "judge")
