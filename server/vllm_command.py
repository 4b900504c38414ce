"""The command line that starts a vLLM server for a bot (`hybrid vllm command`): the
bot's base model under its hybrid name, LoRA enabled with room for its adapters, and the
active and candidate versions preloaded under their `name@version`."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def vllm_command(bot: Bot) -> VllmCommand:
    """How to start vLLM for `bot`, at the address [vllm] url names."""
    models, settings = bot.config.models, bot.config.vllm
    address = urlsplit(settings.url)
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
