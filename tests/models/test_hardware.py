"""What the machine offers, read from the real tools; odd tool output degrades to "unknown"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.hardware import GpuInfo, free_gpu_memory_bytes, nvidia_gpus, physical_cores


def fake_nvidia_smi(directory: Path, monkeypatch: pytest.MonkeyPatch, output: str) -> None:
    """Put an ``nvidia-smi`` that prints ``output`` first on PATH."""
    script = directory / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'END'\n{output}\nEND\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


def test_gpus_are_read_from_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, "NVIDIA H100 80GB HBM3, 81559, 80000\n"
                                           "NVIDIA A100-SXM4-40GB, 40960, 1024")
    mib = 1024 * 1024
    assert nvidia_gpus() == [
        GpuInfo("NVIDIA H100 80GB HBM3", 81559 * mib, 80000 * mib),
        GpuInfo("NVIDIA A100-SXM4-40GB", 40960 * mib, 1024 * mib),
    ]
    assert free_gpu_memory_bytes("CUDA") == 80000 * mib


def test_gpu_without_memory_figures_is_skipped_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvidia_smi(tmp_path, monkeypatch, "NVIDIA GH200 480GB, [N/A], [N/A]")
    assert nvidia_gpus() == []
    assert free_gpu_memory_bytes("CUDA") is None


def test_threads_never_exceed_the_cpus_this_process_may_use() -> None:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= physical_cores() <= (usable or 1)
