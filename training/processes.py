"""The processes one training run spans: one by default, N under `accelerate launch`.

The recipe asks this object, never torch.distributed, which examples of a step are its
own, what the totals over all processes are, and whether it is the process that writes
to disk. A one-process run needs no Accelerate at all; under `accelerate launch` (or
`hybrid train --processes N`, which calls it) Accelerate sets up the process group and
wraps the model in DistributedDataParallel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol, TypeVar

from hybrid.errors import InvalidInputError

T = TypeVar("T")


def launched_processes() -> int:
    """How many processes the launcher started (torchrun's WORLD_SIZE; 1 when run plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main_process() -> bool:
    """Whether this is the process that reports and writes (rank 0, or not launched)."""
    return int(os.environ.get("RANK", "0")) == 0


class Processes(Protocol):
    rank: int
    count: int

    @property
    def is_main(self) -> bool: ...

    def wrap(self, module: Any) -> Any:
        """The module to call for a training forward (gradients are averaged across
        processes on the backward of a synced call)."""

    def no_sync(self, wrapped: Any) -> AbstractContextManager[Any]:
        """Backward passes in this block accumulate locally, without communication."""

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums of `values` over all processes."""

    def gather(self, value: T) -> list[T]:
        """Every process's `value`, in rank order."""

    def on_main(self, work: Callable[[], T]) -> T:
        """Runs `work` on the main process only (what writes to disk); every process
        waits for it and gets its result."""


class OneProcess:
    rank, count = 0, 1

    @property
    def is_main(self) -> bool:
        return True

    def wrap(self, module: Any) -> Any:
        return module

    def no_sync(self, wrapped: Any) -> AbstractContextManager[Any]:
        return nullcontext()

    def sum(self, values: Sequence[float]) -> list[float]:
        return list(values)

    def gather(self, value: T) -> list[T]:
        return [value]

    def on_main(self, work: Callable[[], T]) -> T:
        return work()


class AccelerateProcesses:
    """A run under `accelerate launch`: DDP over gloo on CPUs, NCCL on GPUs."""

    def __init__(self, cpu: bool) -> None:
        from accelerate import Accelerator, DistributedType
        from accelerate.utils import DistributedDataParallelKwargs

        # Buffers (rotary frequencies) never change, and broadcasting them on every
        # forward would make a forward a collective call.
        ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
        self._accelerator = Accelerator(cpu=cpu, kwargs_handlers=[ddp])
        kind = self._accelerator.distributed_type
        if kind not in (DistributedType.MULTI_CPU, DistributedType.MULTI_GPU):
            # FSDP / DeepSpeed shard the weights: saving the adapter, the checkpoints and
            # the best epoch's weights would need their gathered state, not built yet.
            raise InvalidInputError(
                f"the accelerate config asks for {kind.value}; hybrid trains with DDP only",
                hint="use an accelerate config with distributed_type MULTI_GPU or MULTI_CPU",
            )
        self.rank = self._accelerator.process_index
        self.count = self._accelerator.num_processes

    @property
    def is_main(self) -> bool:
        return self._accelerator.is_main_process

    def wrap(self, module: Any) -> Any:
        return self._accelerator.prepare_model(module)

    def no_sync(self, wrapped: Any) -> AbstractContextManager[Any]:
        return self._accelerator.no_sync(wrapped)

    def sum(self, values: Sequence[float]) -> list[float]:
        import torch

        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._accelerator.device)
        return self._accelerator.reduce(tensor, reduction="sum").tolist()

    def gather(self, value: T) -> list[T]:
        from accelerate.utils import gather_object

        return gather_object([value])

    def on_main(self, work: Callable[[], T]) -> T:
        from accelerate.utils import broadcast_object_list

        result = [work() if self.is_main else None]
        return broadcast_object_list(result, from_process=0)[0]


def current_processes(cpu: bool) -> Processes:
    """This run's processes: Accelerate's when launched as several, else one."""
    return AccelerateProcesses(cpu) if launched_processes() > 1 else OneProcess()
