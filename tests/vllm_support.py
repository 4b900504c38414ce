"""What the engine tests share about vLLM: its virtualenv (`make vllm-env`), and a bot
switched to one generator or the other."""

from __future__ import annotations

import socket
from pathlib import Path

import msgspec

from hybrid import Bot

VLLM_PYTHON = Path(__file__).resolve().parents[1] / ".venv-vllm" / "bin" / "python"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_generator(bot: Bot, generator: str) -> Bot:
    """`bot` answering through `generator` ("local" or "vllm")."""
    models = msgspec.structs.replace(bot.config.models, generator=generator)
    return Bot(bot.root, msgspec.structs.replace(bot.config, models=models))
