"""indexes: documents -> chunks -> embeddings -> versioned FAISS + FTS5 -> Retriever.

Knows nothing of training. The front door: load an embedder, sync a bot's docs folder
into a new index version, search the published version, and inspect or roll it back.
"""

from indexes.calibration import Calibration, calibrate_handover
from indexes.embedders import (
    EMBEDDED_EMBEDDERS,
    SentenceTransformerEmbedder,
    embedder_for_bot,
    load_embedder,
)
from indexes.hashing_embedder import HashingEmbedder
from indexes.loaders import LoadProblem, load_documents
from indexes.maintenance import (
    CheckReport,
    check_index,
    index_changes,
    index_status,
    index_versions,
    published_chunk_ids,
    rollback_index,
)
from indexes.retriever import HybridRetriever, IndexNotReadyError, open_retriever
from indexes.sync import SyncSummary, sync_index

__all__ = [
    "EMBEDDED_EMBEDDERS",
    "Calibration",
    "CheckReport",
    "HashingEmbedder",
    "HybridRetriever",
    "IndexNotReadyError",
    "LoadProblem",
    "SentenceTransformerEmbedder",
    "SyncSummary",
    "calibrate_handover",
    "check_index",
    "embedder_for_bot",
    "index_changes",
    "index_status",
    "index_versions",
    "load_documents",
    "load_embedder",
    "open_retriever",
    "published_chunk_ids",
    "rollback_index",
    "sync_index",
]
