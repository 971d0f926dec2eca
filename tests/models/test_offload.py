"""The GPU offload decision for every backend and memory situation (no GPU needed)."""

from __future__ import annotations

import pytest

from models.offload import plan_offload

GB = 1_000_000_000


@pytest.mark.parametrize(
    ("requested", "backend", "free", "expected_layers", "reason"),
    [
        ("auto", "CPU", None, 0, "no GPU backend"),
        ("auto", "CUDA", 8 * GB, 41, "all layers on the GPU (needs ~2.3 GB, 8.0 GB free)"),
        ("auto", "CUDA", 2 * GB, 0, "on the CPU: needs ~2.3 GB of GPU memory, 2.0 GB free"),
        ("auto", "Metal", None, 41, "free memory unknown"),
        (0, "CUDA", 8 * GB, 0, "switched off"),
        (20, "CUDA", None, 20, "n_gpu_layers = 20"),
        (99, "Vulkan", None, 41, "n_gpu_layers = 99"),
        (-1, "CUDA", None, 41, "n_gpu_layers = -1"),
    ],
)
def test_offload_plan(
    requested: int | str, backend: str, free: int | None, expected_layers: int, reason: str
) -> None:
    plan = plan_offload(
        requested,  # type: ignore[arg-type]
        layers=40,
        model_bytes=int(1.8 * GB),
        backend=backend,
        free_gpu_bytes=free,
    )
    assert (plan.n_gpu_layers, plan.total_layers, plan.backend) == (expected_layers, 41, backend)
    assert reason in plan.reason
