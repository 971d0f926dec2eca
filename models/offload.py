"""Where a model's layers run (GPU offload or CPU), and whether the model fits at all.

Pure decisions from the model's size and what the machine reports, so every branch is testable
without a GPU; :mod:`models.runtime` applies them when loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from models.engine import OffloadInfo
from models.errors import ModelLoadError
from models.hardware import available_memory_bytes

_GB = 1e9
_RUNTIME_OVERHEAD_BYTES = 512 * 1024 * 1024
"""Compute buffers and the KV cache of a laptop-sized context, on top of the weights."""


def plan_offload(
    requested: int | Literal["auto"],
    *,
    layers: int,
    model_bytes: int,
    backend: str,
    free_gpu_bytes: int | None,
) -> OffloadInfo:
    """How many layers go to the GPU, and a sentence saying why.

    ``auto`` offloads everything when llama.cpp has a GPU backend and the weights plus runtime
    buffers fit in free GPU memory (or when free memory cannot be known); otherwise CPU.
    """
    total = layers + 1  # llama.cpp counts the output layer as offloadable too
    if backend == "CPU":
        return OffloadInfo(0, total, "CPU", "this llama.cpp build has no GPU backend")
    if requested == 0:
        return OffloadInfo(0, total, backend, "GPU offload switched off (n_gpu_layers = 0)")
    if requested != "auto":
        layers = total if requested < 0 else min(requested, total)
        return OffloadInfo(layers, total, backend, f"n_gpu_layers = {requested} from settings")
    needed = model_bytes + _RUNTIME_OVERHEAD_BYTES
    free = free_gpu_bytes
    if free is None:
        return OffloadInfo(total, total, backend, "all layers on the GPU (free memory unknown)")
    if needed <= free:
        return OffloadInfo(
            total,
            total,
            backend,
            f"all layers on the GPU (needs ~{needed / _GB:.1f} GB, {free / _GB:.1f} GB free)",
        )
    return OffloadInfo(
        0,
        total,
        backend,
        f"on the CPU: needs ~{needed / _GB:.1f} GB of GPU memory, {free / _GB:.1f} GB free "
        "(set n_gpu_layers to a number to offload part of it)",
    )


def check_memory(path: Path, size: int) -> None:
    """Refuse a CPU load that cannot fit: swapping or the OOM killer would be the alternative."""
    available = available_memory_bytes()
    if available is not None and size + _RUNTIME_OVERHEAD_BYTES > available:
        raise ModelLoadError(
            f"{path}: too large for this machine's free memory (needs "
            f"~{(size + _RUNTIME_OVERHEAD_BYTES) / _GB:.1f} GB, {available / _GB:.1f} GB "
            "available); "
            "pick a smaller model or quantization"
        )
