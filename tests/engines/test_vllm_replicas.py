"""hybrid in front of two vLLM replicas (`[vllm] url` as a list): answers are spread over
both, a new version promoted through the API is loaded into each, and one replica
stopping leaves the other answering while /healthz names the one that is down."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import openai
import pytest
from support import serving
from vllm_support import VLLM_PYTHON, free_port, with_generator

from hybrid import Bot
from server.app import create_app
from server.vllm_command import VllmProcess
from training import TrainRequest, train_adapter

pytestmark = pytest.mark.engines
QUESTION = "Can I change my delivery address after ordering?"


@pytest.fixture(scope="module")
def second(
    engine_bot: Bot, vllm: VllmProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VllmProcess]:
    """A second vLLM server for the bot, started as `hybrid vllm command` says."""
    log = tmp_path_factory.mktemp("replica") / "vllm.log"
    replica = VllmProcess(engine_bot, VLLM_PYTHON, log, url=f"http://127.0.0.1:{free_port()}")
    replica.start()
    yield replica
    replica.kill()


def replicated(bot: Bot, folder: Path, urls: list[str]) -> Bot:
    """A copy of `bot` in `folder` (its promotions stay there, and it shares the base
    model's converted weights), generating on `urls`."""

    def base_model(directory: str, names: list[str]) -> list[str]:
        return [bot.models_dir.name] if Path(directory) == bot.state_dir else []

    shutil.copytree(bot.root, folder, ignore=base_model)
    vllm = msgspec.structs.replace(bot.config.vllm, url=urls)
    config = with_generator(bot, "vllm").config
    copy = Bot(folder, msgspec.structs.replace(config, vllm=vllm))
    copy.models_dir.symlink_to(bot.models_dir)
    return copy


def served(replica: VllmProcess) -> set[str]:
    models = httpx.get(f"{replica.url}/v1/models", timeout=10).json()["data"]
    return {model["id"] for model in models if model["parent"]}


def answered(replica: VllmProcess) -> float:
    """How many requests the replica has finished, from its Prometheus metrics."""
    metrics = httpx.get(f"{replica.url}/metrics", timeout=10).text.splitlines()
    counts = [line for line in metrics if line.startswith("vllm:request_success_total")]
    assert counts, "vLLM reports vllm:request_success_total"
    return sum(float(line.rsplit(" ", 1)[1]) for line in counts)


def test_two_replicas_share_the_answers_and_each_gets_a_promotion(
    engine_bot: Bot, vllm: VllmProcess, second: VllmProcess, tmp_path: Path
) -> None:
    bot = replicated(engine_bot, tmp_path / "bot", [vllm.url, second.url])
    before = {replica.url: answered(replica) for replica in (vllm, second)}
    with serving(create_app(bot)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)

        def ask(model: str) -> str:
            answer = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": QUESTION}], max_tokens=24
            )
            return answer.model

        with ThreadPoolExecutor(4) as pool:
            models = list(pool.map(ask, ["terse@1"] * 4))
        assert models == ["terse@1"] * 4
        after = {replica.url: answered(replica) for replica in (vllm, second)}
        spread = {key: after[key] - before[key] for key in after}
        assert all(count >= 1 for count in spread.values()), spread
        assert sum(spread.values()) == 4

        # A new version, promoted through the API: every replica serves it at once.
        request = TrainRequest(bot.data_dir / "train.jsonl", name="brisk", max_steps=1)
        train_adapter(bot, request)
        httpx.post(f"{url}/v1/adapters/brisk/promote", json={}).raise_for_status()
        assert "brisk@1" in served(vllm) and "brisk@1" in served(second)

        second.kill()
        assert {ask("brisk") for _ in range(2)} == {"brisk@1"}, "the other replica answers"
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 200, health.text
        assert second.url in health.json()["detail"] and vllm.url not in health.json()["detail"]
