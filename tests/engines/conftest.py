"""The bot the engine tests share, and a real vLLM server for it (server/vllm_command.py),
started once per session on a free loopback port. The bot has two adapters trained
briefly at a high learning rate, so that each answers unlike the base model."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import synced_bot
from vllm_support import VLLM_PYTHON, free_port

from hybrid import Bot
from hybrid.config import with_training
from server.vllm_command import VllmProcess
from training import AdapterRegistry, TrainRequest, train_adapter


@pytest.fixture(scope="session")
def engine_bot(tmp_path_factory: pytest.TempPathFactory) -> Bot:
    """The sample bot on the embedded models, with vLLM's address set, style@1 (active)
    and terse@1 (a candidate)."""
    bot = synced_bot(
        tmp_path_factory.mktemp("engines") / "bot", url=f"http://127.0.0.1:{free_port()}"
    )
    for name, seed in (("style", 0), ("terse", 1)):
        trained = Bot(bot.root, with_training(bot.config, learning_rate=0.01, seed=seed))
        request = TrainRequest(bot.data_dir / "train.jsonl", name=name, max_steps=3)
        train_adapter(trained, request)
    with AdapterRegistry(bot.database, bot.adapters_dir) as registry:
        registry.promote("style", 1)
    return bot


@pytest.fixture(scope="session")
def vllm(engine_bot: Bot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmProcess]:
    server = VllmProcess(engine_bot, VLLM_PYTHON, tmp_path_factory.mktemp("vllm") / "vllm.log")
    server.start()
    yield server
    server.kill()
