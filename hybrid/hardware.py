"""Device and dtype, chosen in one place for every model hybrid loads.

CUDA with bf16 (fp16 on GPUs without bf16) when a GPU is present, else the CPU in fp32.
torch is imported only when a placement is actually chosen, so the core stays light.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from hybrid.errors import HybridError

if TYPE_CHECKING:
    import torch

DeviceChoice = Literal["auto", "cpu", "cuda"]
DtypeChoice = Literal["auto", "float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class Placement:
    device: Literal["cpu", "cuda"]
    dtype: Literal["float32", "bfloat16", "float16"]

    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)


def limit_threads(threads: int) -> None:
    """Use `threads` CPU threads for this process's model work (0: OMP_NUM_THREADS if it
    is set, else one per core). On a machine other jobs share, fewer threads than cores
    can be much faster: a thread that waits for a busy core holds up all the others."""
    if threads <= 0:
        return
    import sys

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:  # too late for the environment to count
        sys.modules["torch"].set_num_threads(threads)


def choose_placement(device: DeviceChoice = "auto", dtype: DtypeChoice = "auto") -> Placement:
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise HybridError(
            'models.device = "cuda" but no CUDA GPU is visible to torch',
            hint='set models.device = "auto" or "cpu", or install a CUDA build of torch',
        )
    chosen = "cuda" if device == "cuda" or (device == "auto" and has_cuda) else "cpu"
    if dtype != "auto":
        return Placement(chosen, dtype)
    if chosen == "cuda":
        return Placement(chosen, "bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    # On CPU, weights stay fp32; training gets its bf16 speed from autocast instead.
    return Placement(chosen, "float32")


def bf16_autocast_pays(placement: Placement) -> bool:
    """Whether bf16 autocast is native on this hardware: a GPU with bf16, or a CPU with
    AVX512-BF16 or AMX (elsewhere it is emulated and slower than fp32)."""
    import torch

    if placement.device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))
