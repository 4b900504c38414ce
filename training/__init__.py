"""training: base-model loading and chat rendering (adapters and the LoRA recipe follow).

Knows nothing of indexes: retrieval it needs arrives through hybrid's Retriever protocol.
"""

from training.base_model import EMBEDDED_BASE_MODELS, BaseModel, load_base_model
from training.chat import render_chat

__all__ = ["EMBEDDED_BASE_MODELS", "BaseModel", "load_base_model", "render_chat"]
