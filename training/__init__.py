"""training: base-model loading, training data (formats, lint), chat rendering with loss
masks, the LoRA/QLoRA recipe and the adapter registry.

Knows nothing of indexes: retrieval it needs arrives through hybrid's Retriever protocol.
"""

from training.base_model import (
    EMBEDDED_BASE_MODELS,
    BaseModel,
    load_base_model,
    load_tokenizer,
    weights_path,
)
from training.chat import render_chat
from training.datasets import DataProblem, Dataset, Example, read_dataset
from training.export import export_adapter, merge_adapter
from training.lint import LintReport, lint_data, lint_for_training, write_redacted
from training.recipe import (
    Progress,
    TrainRequest,
    TrainResult,
    can_resume,
    discard_run,
    train_adapter,
)
from training.registry import AdapterNotFoundError, AdapterRecord, AdapterRegistry
from training.rendering import RenderError, TokenizedExample, tokenize_example
from training.retrieval_data import with_retrieval

__all__ = [
    "EMBEDDED_BASE_MODELS",
    "AdapterNotFoundError",
    "AdapterRecord",
    "AdapterRegistry",
    "BaseModel",
    "DataProblem",
    "Dataset",
    "Example",
    "LintReport",
    "Progress",
    "RenderError",
    "TokenizedExample",
    "TrainRequest",
    "TrainResult",
    "can_resume",
    "discard_run",
    "export_adapter",
    "lint_data",
    "lint_for_training",
    "load_base_model",
    "load_tokenizer",
    "merge_adapter",
    "read_dataset",
    "render_chat",
    "tokenize_example",
    "train_adapter",
    "weights_path",
    "with_retrieval",
    "write_redacted",
]
