"""What this machine offers a model: physical cores, free memory, the GPU llama.cpp can use.

Used by the engine to pick threads and GPU offload, and by ``doctor`` to report them. Everything
degrades to "unknown" (``None``) rather than guessing when the platform does not say.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import llama_cpp

_GPU_BACKENDS = ("CUDA", "Metal", "HIP", "ROCm", "Vulkan", "SYCL", "MUSA", "CANN", "OpenCL")


@dataclass(frozen=True)
class GpuInfo:
    name: str
    total_bytes: int
    free_bytes: int


def physical_cores() -> int:
    """Physical CPU cores this process may use (llama.cpp decodes fastest with one per core).

    Capped by the CPUs the process is allowed to run on: a container pinned to 2 CPUs of a
    64-core host would otherwise start 32 threads that fight over 2.
    """
    if platform.system() == "Darwin":
        cores_reported = _sysctl("hw.physicalcpu")
        if cores_reported:
            return cores_reported
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cores = set()
        physical = core = ""
        for line in cpuinfo.read_text(errors="replace").splitlines() + [""]:
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "physical id":
                physical = value.strip()
            elif key == "core id":
                core = value.strip()
            elif not line.strip() and core:
                cores.add((physical, core))
                physical = core = ""
        if cores:
            return min(len(cores), _usable_cpus())
    return _usable_cpus()


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(len(os.sched_getaffinity(0)), 1)
    return max(os.cpu_count() or 1, 1)


def available_memory_bytes() -> int | None:
    """Memory a new process can use without swapping (Linux MemAvailable, macOS total RAM)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        match = re.search(r"^MemAvailable:\s+(\d+) kB", meminfo.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1)) * 1024
    if platform.system() == "Darwin":
        return _sysctl("hw.memsize")
    return None


def gpu_backend() -> str:
    """The GPU backend compiled into llama.cpp, or ``CPU`` when it has none."""
    if not llama_cpp.llama_supports_gpu_offload():
        return "CPU"
    system_info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace")
    for name in _GPU_BACKENDS:
        if re.search(rf"\b{name}\b", system_info, re.IGNORECASE):
            return name
    return "GPU"


def nvidia_gpus() -> list[GpuInfo]:
    """NVIDIA GPUs as ``nvidia-smi`` reports them; empty when there is no driver or tool."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        output = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,memory.free",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in output.strip().splitlines():
        name, *sizes = line.rsplit(",", 2)
        try:  # "[N/A]" on some GPUs (MIG slices, unified memory): their memory is unknown
            total, free = (int(size) * 1024 * 1024 for size in sizes)
        except ValueError:
            continue
        gpus.append(GpuInfo(name.strip(), total, free))
    return gpus


def free_gpu_memory_bytes(backend: str) -> int | None:
    """Free memory on the first GPU llama.cpp would use, where it can be known."""
    if backend == "CUDA":
        gpus = nvidia_gpus()
        return gpus[0].free_bytes if gpus else None
    if backend == "Metal":  # unified memory: what the system can spare is what the GPU gets
        return available_memory_bytes()
    return None


def _sysctl(name: str) -> int | None:
    try:
        output = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=5, check=True
        ).stdout
        return int(output.strip())
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
