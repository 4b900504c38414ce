from __future__ import annotations

import os
from pathlib import Path

import pytest

from hybrid import ModelLoadError
from hybrid.hardware import Placement, choose_placement
from training import load_base_model, render_chat
from training.base_model import EMBEDDED_BASE_MODELS
from training.gguf_cache import MANIFEST, cached_conversion

CPU = Placement("cpu", "float32")


def test_a_local_folder_loads_through_from_pretrained(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = load_base_model(
        str(tiny_model_dir), base_dir=tmp_path, models_dir=tmp_path, placement=CPU
    )
    assert base.model.config.num_hidden_layers == 2
    assert base.path == str(tiny_model_dir)
    assert base.context_window == 512
    assert not list(tmp_path.iterdir()), "a local model is used in place, not copied"


def test_a_relative_folder_is_relative_to_the_bot(tiny_model_dir: Path) -> None:
    base = load_base_model(
        tiny_model_dir.name,
        base_dir=tiny_model_dir.parent,
        models_dir=tiny_model_dir,
        placement=CPU,
    )
    assert base.path == str(tiny_model_dir)


def test_the_dtype_comes_from_the_placement(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    base = load_base_model(
        str(tiny_model_dir),
        base_dir=tmp_path,
        models_dir=tmp_path,
        placement=Placement("cpu", "bfloat16"),
    )
    assert base.model.dtype == torch.bfloat16


def test_a_hub_id_goes_to_from_pretrained_and_fails_cleanly_offline(tmp_path: Path) -> None:
    with pytest.raises(
        ModelLoadError, match="cannot load base model 'acme/no-such-model'"
    ) as caught:
        load_base_model("acme/no-such-model", base_dir=tmp_path, models_dir=tmp_path, placement=CPU)
    assert "embedded:" in str(caught.value)  # the hint shows the offline way


def test_unknown_embedded_names_and_missing_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="smollm2-135m-instruct"):
        load_base_model("embedded:gpt-7", base_dir=tmp_path, models_dir=tmp_path, placement=CPU)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_base_model("./models/mine", base_dir=tmp_path, models_dir=tmp_path, placement=CPU)


def test_chat_rendering_falls_back_to_chatml_without_a_template(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from hybrid import Message

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert not tokenizer.chat_template
    text = render_chat(
        tokenizer, [Message("system", "S"), Message("user", "Q")], add_generation_prompt=True
    )
    assert (
        text
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n"
    )


def test_cpu_placement_without_a_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU; the CPU default is what is checked here")
    assert choose_placement() == Placement("cpu", "float32")
    assert choose_placement("cpu", "bfloat16") == Placement("cpu", "bfloat16")
    with pytest.raises(Exception, match="no CUDA GPU"):
        choose_placement("cuda")


@pytest.mark.slow
def test_the_embedded_default_converts_once_and_matches_the_gguf(real_bot) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from hybrid import Message

    def load():
        return load_base_model(
            "embedded:smollm2-135m-instruct",
            base_dir=real_bot.root,
            models_dir=real_bot.models_dir,
            placement=CPU,
        )

    first = load()
    cache = Path(first.path)
    assert cache.parent == real_bot.models_dir
    assert (cache / "model.safetensors").is_file() and (cache / MANIFEST).is_file()
    stamp = (cache / MANIFEST).stat().st_mtime_ns
    second = load()
    assert second.path == first.path
    assert (cache / MANIFEST).stat().st_mtime_ns == stamp, "the second load converted again"

    # The cached safetensors hold exactly the weights transformers dequantizes from GGUF.
    gguf = EMBEDDED_BASE_MODELS["smollm2-135m-instruct"].gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, use_kernels=False
    ).eval()
    prompt = render_chat(second.tokenizer, [Message("user", "Hello!")], add_generation_prompt=True)
    ids = second.tokenizer(prompt, return_tensors="pt").input_ids
    with torch.inference_mode():
        assert torch.equal(direct(ids).logits, second.model(ids).logits)
    assert "<|im_start|>assistant\n" in prompt  # SmolLM2's own ChatML template


@pytest.mark.slow
def test_an_abandoned_conversion_is_cleaned_and_redone(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = EMBEDDED_BASE_MODELS["smollm2-135m-instruct"]
    dead_pid = 2**22 + 1  # above Linux's pid_max: no such process
    leftover = tmp_path / f".smollm2-135m-instruct-{source.cache_key()}.tmp-{dead_pid}-1"
    leftover.mkdir(parents=True)
    (leftover / "model.safetensors").write_bytes(b"half written")
    folder = cached_conversion("smollm2-135m-instruct", source, tmp_path)
    assert not leftover.exists()
    assert (folder / MANIFEST).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]
    assert os.path.getsize(folder / "model.safetensors") > 100_000_000
    assert "GGUF tensors" not in capfd.readouterr().err, "no progress bar of transformers'"
