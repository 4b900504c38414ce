"""Models loaded in several threads at once (a server loads its model while a
fine-tuning job loads its own): transformers swaps class attributes while it builds a
model, so unserialised loads could leave them swapped, after which no model ties its
output layer to its embeddings."""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from transformers import PreTrainedModel

from hybrid.hardware import Placement
from training import load_base_model


def test_concurrent_loads_leave_transformers_as_they_found_it(tiny_model_dir: Path) -> None:
    tie_weights, kaiming = PreTrainedModel.tie_weights, torch.nn.init.kaiming_uniform_
    failures: list[BaseException] = []

    def load() -> None:
        try:
            for _ in range(4):
                load_base_model(
                    str(tiny_model_dir), base_dir=tiny_model_dir, models_dir=tiny_model_dir,
                    placement=Placement("cpu", "float32"),
                )  # fmt: skip
        except BaseException as exc:  # a thread's exception is lost otherwise
            failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert PreTrainedModel.tie_weights is tie_weights
    assert torch.nn.init.kaiming_uniform_ is kaiming
