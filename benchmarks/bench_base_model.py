"""The embedded default base model: the one-time GGUF conversion against a cached load,
and the latency of the first answer token for the sample bot's first question."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, median_seconds
from hybrid.bot import init_bot
from hybrid.hardware import choose_placement
from hybrid.prompt import build_messages
from training import load_base_model, render_chat

QUESTION = "How long do I have to return an item?"


def run() -> list[Figure]:
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        bot = init_bot(Path(scratch) / "bot")
        placement = choose_placement(bot.config.models.device, bot.config.models.dtype)

        def load():
            return load_base_model(
                bot.config.models.base,
                base_dir=bot.root,
                models_dir=bot.models_dir,
                placement=placement,
            )

        started = time.perf_counter()
        load()  # converts the GGUF and caches it
        cold = time.perf_counter() - started
        cached = median_seconds(load, repeats=5, warmup=0)
        base = load()

        messages = build_messages(bot.config.bot.system_prompt, QUESTION)
        prompt = render_chat(base.tokenizer, messages, add_generation_prompt=True)
        inputs = base.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)

        def generate(tokens: int):
            with torch.inference_mode():
                return base.model.generate(
                    **inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False
                )

        first_token = median_seconds(lambda: generate(1), repeats=7)
        sixty_four = median_seconds(lambda: generate(64), repeats=3)
    decode_rate = 63 / (sixty_four - first_token)
    prompt_tokens = inputs.input_ids.shape[1]
    return [
        Figure("cold load (GGUF -> safetensors)", round(cold, 2), "s", "first run of a bot"),
        Figure("cached load", round(cached, 2), "s", "median of 5; model + tokenizer"),
        Figure("cold / cached", round(cold / cached, 1), "x", "same run"),
        Figure(
            "first-token latency",
            round(first_token * 1000),
            "ms",
            f"{prompt_tokens}-token prompt, median of 7",
        ),
        Figure("decode speed", round(decode_rate, 1), "tokens/s", "batch 1, greedy, fp32"),
    ]
