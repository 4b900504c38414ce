"""A LoRA variant the stacked update cannot apply (DoRA) falls back to peft's own
switches: a pass on that adapter, and one on the base model after it, give what peft
alone gives. (Mixed passes of such variants are not supported: peft refuses
`adapter_names` with DoRA.)"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from server.adapter_set import BASE, AdapterSet


def test_an_unstackable_adapter_answers_as_peft_does(tiny_model_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = LoraConfig(r=4, target_modules="all-linear", use_dora=True, init_lora_weights=False)
    trained = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_kernels=False), config
    )
    trained.save_pretrained(tmp_path / "dora")
    ids = torch.randint(0, trained.config.vocab_size, (2, 12))
    with torch.inference_mode():
        with_adapter = trained(input_ids=ids).logits
        with trained.disable_adapter():
            without = trained(input_ids=ids).logits

    adapters = AdapterSet(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, use_kernels=False).eval()
    )
    adapters.load("dora@1", str(tmp_path / "dora"))
    with torch.inference_mode():
        alone = adapters.forward({"input_ids": ids}, ["dora@1", "dora@1"]).logits
        base = adapters.forward({"input_ids": ids}, [BASE, BASE]).logits
    assert not torch.allclose(with_adapter, without, atol=1e-3), "the adapter changes answers"
    assert torch.allclose(alone, with_adapter, atol=1e-4)
    assert torch.allclose(base, without, atol=1e-4)
