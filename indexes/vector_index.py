"""FAISS index versions on disk: `.hybrid/indexes/<version>/{index.faiss,config.json}`.

FAISS ids are the store's chunk numbers. A version is written into a temporary folder
beside the others and renamed into place, so a folder named by a version number is
always complete; the config JSON records what made it, so it can be reopened alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hybrid.errors import HybridError
from hybrid.staging import staged_folder

if TYPE_CHECKING:
    import faiss
    import numpy as np

INDEX_FILE = "index.faiss"
CONFIG_FILE = "config.json"
METRIC = "inner_product"  # on unit vectors: cosine similarity
_HNSW_NEIGHBOURS = 32
_HNSW_EF_SEARCH = 96


@dataclass(frozen=True)
class VectorIndexConfig:
    version: int
    embedder: str
    dimension: int
    kind: str  # "flat" or "hnsw"
    chunk_count: int
    metric: str = METRIC


class VectorIndex:
    """One loaded version: search by vector, list the ids it holds."""

    def __init__(self, index: faiss.Index, config: VectorIndexConfig) -> None:
        self.index = index
        self.config = config

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        import faiss

        try:
            config = VectorIndexConfig(**json.loads((folder / CONFIG_FILE).read_text()))
            index = faiss.read_index(str(folder / INDEX_FILE))
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise HybridError(
                f"index version folder {folder} is unreadable: {exc}",
                hint="run `hybrid index check`, then `hybrid index sync --rebuild`",
            ) from exc
        if config.kind == "hnsw":
            faiss.downcast_index(index.index).hnsw.efSearch = _HNSW_EF_SEARCH
        return cls(index, config)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """(chunk num, cosine similarity) of the k nearest chunks, best first."""
        if self.index.ntotal == 0:
            return []
        scores, ids = self.index.search(vector.reshape(1, -1), min(k, self.index.ntotal))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def ids(self) -> set[int]:
        import faiss

        return set(faiss.vector_to_array(self.index.id_map).tolist())


def choose_kind(setting: str, chunk_count: int, hnsw_min_chunks: int) -> str:
    if setting != "auto":
        return setting
    return "hnsw" if chunk_count >= hnsw_min_chunks else "flat"


def build(kind: str, dimension: int, ids: np.ndarray, vectors: np.ndarray) -> faiss.Index:
    import faiss

    if kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, _HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
    else:
        inner = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(vectors, ids)
    return index


def patch(
    parent: VectorIndex, remove: np.ndarray, add_ids: np.ndarray, add_vectors: np.ndarray
) -> faiss.Index:
    """The parent's flat index minus `remove` plus the new vectors: O(changes) embedding
    work, and the published index itself is never touched (this is a copy)."""
    import faiss

    index = faiss.clone_index(parent.index)
    if len(remove):
        index.remove_ids(faiss.IDSelectorBatch(remove))
    if len(add_ids):
        index.add_with_ids(add_vectors, add_ids)
    return index


def can_patch(parent: VectorIndex, kind: str, embedder: str, dimension: int) -> bool:
    """Only a flat index can drop vectors; any other change means a fresh build."""
    config = parent.config
    same_embedder = (config.embedder, config.dimension) == (embedder, dimension)
    return config.kind == kind == "flat" and same_embedder


def write_version(indexes_dir: Path, index: faiss.Index, config: VectorIndexConfig) -> Path:
    """Write a version folder completely, then rename it into place."""
    import faiss

    final = indexes_dir / str(config.version)
    # replace: a folder of this number was left by a crash before its publication.
    with staged_folder(final, replace=True) as staging:
        faiss.write_index(index, str(staging / INDEX_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n")
    return final


def remove_stale_folders(indexes_dir: Path, keep: set[int]) -> list[str]:
    """Delete version folders not in `keep` and every staging folder. Called only under
    the sync lock, so no staging folder belongs to a live sync."""
    removed = []
    if not indexes_dir.is_dir():
        return removed
    for folder in indexes_dir.iterdir():
        if folder.name.isdigit() and int(folder.name) in keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed
