"""The command line that starts a vLLM server for a bot (`hybrid vllm command`): the
bot's base model under its hybrid name, LoRA enabled with room for its adapters, and the
active and candidate versions preloaded under their `name@version`; and a vLLM process
started with it (the engine tests and benchmarks)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from hybrid.bot import Bot
from training import AdapterRegistry, weights_path

# vLLM accepts these LoRA ranks as its maximum.
LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
MAX_MODEL_LEN = 2048
# The KV cache's size, fixed: vLLM's default (a share of all memory, which on a CPU must
# be free at start) fails on a machine with anything else running. 1 GiB holds ~45k
# tokens of SmolLM2-135M; raise it for a larger model or more concurrent answers.
KV_CACHE_BYTES = 1 << 30


@dataclass(frozen=True)
class VllmCommand:
    argv: list[str]  # after the Python interpreter
    env: dict[str, str]  # to set besides the caller's environment
    key_from: str = ""  # the variable holding the API key vLLM is to require (VLLM_API_KEY)

    def shell(self, python: str = "python") -> str:
        settings = [f"{name}={shlex.quote(value)}" for name, value in self.env.items()]
        if self.key_from:
            settings.append(f'VLLM_API_KEY="${self.key_from}"')
        return f"{' '.join(settings)} {shlex.join([python, *self.argv])}"


def vllm_command(bot: Bot, url: str | None = None) -> VllmCommand:
    """How to start vLLM for `bot` at `url`: one of the addresses [vllm] url lists (the
    first by default); every replica is started the same way."""
    models, settings = bot.config.models, bot.config.vllm
    address = urlsplit(url or settings.urls[0])
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        served = [r for r in registry.list() if r.status in ("active", "candidate")]
    ranks = [bot.config.training.lora_r]
    for record in served:
        config = json.loads((record.path / "adapter_config.json").read_text())
        ranks.append(int(config.get("r", 0)))
    rank = next((r for r in LORA_RANKS if r >= max(ranks)), LORA_RANKS[-1])
    argv = [
        "-m", "vllm.entrypoints.openai.api_server",
        "--model", weights_path(models.base, bot.root, bot.models_dir),
        "--served-model-name", models.base,
        "--dtype", "bfloat16",
        "--max-model-len", str(MAX_MODEL_LEN),
        "--kv-cache-memory-bytes", str(KV_CACHE_BYTES),
        "--enable-lora",
        "--max-lora-rank", str(rank),
        "--max-loras", str(max(4, len(served))),
        "--host", address.hostname or "127.0.0.1",
        "--port", str(address.port or 80),
    ]  # fmt: skip
    if served:
        argv += ["--lora-modules", *(f"{r.ref}={r.path}" for r in served)]
    return VllmCommand(argv, {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}, settings.api_key_env)


class VllmProcess:
    """A vLLM server for `bot` at `url` (the first of [vllm] url by default), run by
    `python` (vLLM's own virtualenv's), its output appended to `log`; it can be killed and
    started again."""

    def __init__(
        self, bot: Bot, python: Path, log: Path, *, url: str | None = None, startup: float = 900
    ) -> None:
        self.bot = bot
        self.python = python
        self.url = url or bot.config.vllm.urls[0]
        self.log = log
        self.startup = startup  # seconds it may take to answer /health
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers (AssertionError if it does not)."""
        assert self.python.exists(), f"{self.python} is missing: run `make vllm-env` first"
        command = vllm_command(self.bot, self.url)
        env = {**os.environ, **command.env, "VLLM_NO_USAGE_STATS": "1", "HF_HUB_OFFLINE": "1"}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.python), *command.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its workers go with it
            )
        deadline = time.monotonic() + self.startup
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"vLLM exited at start: see {self.log}"
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(1)
        self.kill()
        raise AssertionError(f"vLLM did not start in {self.startup:.0f} s: see {self.log}")

    def kill(self) -> None:
        """Stop it at once (SIGKILL to its whole process group), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
