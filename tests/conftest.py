"""Shared fixtures. No test reaches beyond this machine: the model hub is switched off for
this process and its children, and any socket connection outside loopback fails."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

TEMPLATE_DOCS = Path(__file__).resolve().parent.parent / "hybrid" / "templates" / "support" / "docs"


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    real_connect = socket.socket.connect

    def loopback_only(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])  # type: ignore[index]
            if not _is_loopback(host):
                raise ConnectionRefusedError(f"test tried to reach {host}: no network in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_only)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight llama with a small BPE tokenizer trained on the sample documents:
    a real Hugging Face model folder that loads and generates in well under a second.
    The tokenizer has no chat template, so the ChatML fallback is exercised."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-llama")
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(
        (p.read_text() for p in sorted(TEMPLATE_DOCS.glob("*.md"))), trainer=trainer
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        # Larger than the default 0.02: with hidden size 32 and a frozen output layer,
        # small weights cap the logits near uniform, and an adapter could hardly learn.
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def real_bot(tmp_path_factory: pytest.TempPathFactory):
    """The sample support bot, shared by the tests that use the real embedded models so
    that the base model is converted from GGUF once per test session."""
    from hybrid import init_bot
    from indexes import embedder_for_bot, sync_index

    bot = init_bot(tmp_path_factory.mktemp("real") / "acme-support")
    sync_index(bot, embedder_for_bot(bot))
    return bot
