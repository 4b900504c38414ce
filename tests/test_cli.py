"""The `hybrid` command as a user runs it: a real subprocess, real files, real models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HYBRID = [sys.executable, "-m", "hybrid"]


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "HYBRID_BOT"}
    return subprocess.run(
        [*HYBRID, *args],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_every_command_has_help() -> None:
    top = run("--help")
    assert top.returncode == 0
    for command in ("init", "ask"):
        assert command in top.stdout
        assert run(command, "--help").returncode == 0
    assert run("--version").stdout.startswith("hybrid ")


def test_init_creates_the_sample_bot_and_refuses_to_overwrite(tmp_path: Path) -> None:
    created = run("init", str(tmp_path / "bot"), "--template", "support")
    assert created.returncode == 0, created.stderr
    assert "17 documents" in created.stdout
    as_json = run("init", str(tmp_path / "bot2"), "--json")
    assert json.loads(as_json.stdout) == {
        "root": str((tmp_path / "bot2").resolve()),
        "template": "support",
        "documents": 17,
    }
    again = run("init", str(tmp_path / "bot"))
    assert again.returncode == 1
    assert again.stderr.startswith("error:") and "already a bot folder" in again.stderr


def test_a_bad_config_value_is_a_clean_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "hybrid.toml").write_text("[generation]\ntemperature = 9\n")
    result = run("ask", "Hello?", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{tmp_path / 'hybrid.toml'}:2" in result.stderr
    assert "generation.temperature = 9" in result.stderr


def test_outside_any_bot_the_error_says_how_to_make_one(tmp_path: Path) -> None:
    result = run("ask", "Hello?", cwd=tmp_path)
    assert result.returncode == 1
    assert "no hybrid.toml" in result.stderr and "hybrid init" in result.stderr


def test_usage_errors_exit_2() -> None:
    assert run("ask").returncode == 2
    assert run("no-such-command").returncode == 2


@pytest.mark.slow
def test_ask_answers_with_the_real_default_model(real_bot, tmp_path: Path) -> None:
    """`hybrid -C bot ask` end to end on SmolLM2-135M from the embedded GGUF."""
    result = run(
        "-C",
        str(real_bot.root),
        "ask",
        "--json",
        "How long do I have to return an item?",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["question"] == "How long do I have to return an item?"
    assert reply["model"] == "embedded:smollm2-135m-instruct"
    assert reply["finish_reason"] == "stop", "the model should end its turn by itself"
    words = reply["answer"].split()
    assert len(words) >= 8
    assert sum(w.strip(".,!?'\"").isalpha() for w in words) / len(words) > 0.8, "answer is prose"
    assert reply["usage"]["prompt_tokens"] > 50 and reply["usage"]["completion_tokens"] >= 8


@pytest.mark.slow
def test_ask_finds_the_bot_from_the_environment_and_prints_plain_text(
    real_bot, tmp_path: Path
) -> None:
    result = run(
        "ask", "How do I reset my password?", cwd=tmp_path, env={"HYBRID_BOT": str(real_bot.root)}
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) >= 8
    assert "embedded:smollm2-135m-instruct" in result.stderr  # the summary line
