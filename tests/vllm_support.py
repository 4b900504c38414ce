"""A real vLLM server for the tests that need one: its CPU build, from its own virtualenv
(`make vllm-env`), started with the line `hybrid vllm command` prints."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import msgspec

from hybrid import Bot
from server.vllm_command import vllm_command

ROOT = Path(__file__).resolve().parents[2]
VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
STARTUP = 900  # seconds vLLM may take to start on 2 busy cores


class VllmServer:
    """One vLLM process for `bot`, which can be stopped and started again."""

    def __init__(self, bot: Bot, log: Path) -> None:
        self.bot = bot
        self.url = bot.config.vllm.url
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert VLLM_PYTHON.exists(), f"{VLLM_PYTHON} is missing: run `make vllm-env` first"
        command = vllm_command(self.bot)
        env = {
            **os.environ,
            **command.env,
            "VLLM_NO_USAGE_STATS": "1",
            "VLLM_DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
        }
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(VLLM_PYTHON), *command.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its workers go with it
            )
        deadline = time.monotonic() + STARTUP
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"vLLM exited at start: see {self.log}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        raise AssertionError(f"vLLM did not start in {STARTUP} s: see {self.log}")

    def kill(self) -> None:
        """Stop it at once (SIGKILL to its whole process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_generator(bot: Bot, generator: str) -> Bot:
    """`bot` answering through `generator` ("local" or "vllm")."""
    models = msgspec.structs.replace(bot.config.models, generator=generator)
    return Bot(bot.root, msgspec.structs.replace(bot.config, models=models))
