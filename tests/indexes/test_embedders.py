from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybrid import Embedder, ModelLoadError
from hybrid.hardware import Placement
from indexes import load_embedder

CPU = Placement("cpu", "float32")


@pytest.mark.slow
def test_the_embedded_default_embedder_gives_meaningful_unit_vectors(tmp_path: Path) -> None:
    embedder = load_embedder("embedded:all-minilm-l6-v2", base_dir=tmp_path, placement=CPU)
    assert isinstance(embedder, Embedder)
    assert embedder.dimension == 384
    vectors = embedder.embed(
        [
            "How long do I have to return an item?",
            "What is the time limit for sending a product back?",
            "Do you sell kayaks?",
        ]
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2


def test_an_unknown_embedded_embedder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="all-minilm-l6-v2"):
        load_embedder("embedded:bert-huge", base_dir=tmp_path, placement=CPU)
