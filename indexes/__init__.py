"""indexes: documents -> chunks -> embeddings -> versioned FAISS + FTS5 -> Retriever.

Knows nothing of training. (This release holds the embedders; the rest follows.)
"""

from indexes.embedders import EMBEDDED_EMBEDDERS, SentenceTransformerEmbedder, load_embedder

__all__ = ["EMBEDDED_EMBEDDERS", "SentenceTransformerEmbedder", "load_embedder"]
