"""A model-free embedder: feature hashing of words and word pairs.

Deterministic, instant to load and fast, with no weights: for tests, for benchmarks that
need a large corpus quickly, and for bots whose documents are matched by wording. Select
it with `models.embedder = "hashing"` (384 dimensions) or `"hashing:N"`.
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hybrid.errors import ModelLoadError

if TYPE_CHECKING:
    import numpy as np

PREFIX = "hashing"
_WORD = re.compile(r"\w+")


class HashingEmbedder:
    def __init__(self, dimension: int = 384) -> None:
        self.dimension = dimension
        self.name = f"{PREFIX}:{dimension}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for feature in (*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))):
                code = zlib.crc32(feature.encode("utf-8"))
                # The low bit picks the sign, so colliding features tend to cancel out.
                vectors[row, (code >> 1) % self.dimension] += 1.0 if code & 1 else -1.0
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


def parse_hashing_spec(spec: str) -> HashingEmbedder | None:
    """The HashingEmbedder `spec` names ("hashing" or "hashing:N"), else None."""
    name, _, size = spec.partition(":")
    if name != PREFIX:
        return None
    if size and not (size.isdigit() and 8 <= int(size) <= 65536):
        raise ModelLoadError(
            f"bad embedder {spec!r}", hint="use hashing or hashing:N with N from 8 to 65536"
        )
    return HashingEmbedder(int(size) if size else 384)
