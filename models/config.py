"""Settings of the model side. Plain pydantic models: ``assistant.settings`` nests them and fills
them from the config file, the environment and CLI flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class EngineConfig(BaseModel):
    """How a GGUF is loaded and run by llama.cpp."""

    model: str | None = None
    """Catalog name or path of the GGUF to use.

    Empty: a MiniCPM model on disk, else the offline demo model."""

    n_gpu_layers: int | Literal["auto"] = "auto"
    """Layers offloaded to the GPU.

    "auto" offloads all when llama.cpp has a GPU backend and memory allows; 0 forces CPU."""

    max_context: int = Field(default=4096, ge=512)
    """Upper bound on the context length; the model's own (from the GGUF) is used when smaller."""

    n_threads: int | None = None
    """CPU threads for generation. Empty: the number of physical cores."""

    flash_attention: bool = True
    """Use flash attention where llama.cpp supports it for the model and backend."""

    n_batch: int = Field(default=512, ge=32)
    """Tokens evaluated per batch during prefill."""

    seed: int = -1
    """Sampling seed; -1 picks a random one."""

    source: Literal["hf", "modelscope"] = "hf"
    """Where `models pull` downloads from: Hugging Face or ModelScope."""
