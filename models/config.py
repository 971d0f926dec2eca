"""Settings of the model side. Plain pydantic models: ``assistant.settings`` nests them and fills
them from the config file, the environment and CLI flags."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator


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

    prompt_lookup: Literal["auto", "on", "off"] = "auto"
    """Speculative decoding with drafts copied from the prompt (answers quoting their passages).

    "auto" uses it where it measured faster, so far nowhere: on CPU a k-token step costs about
    k single steps; on CUDA it was faster for some draft lengths, but kernels chosen by batch
    size let answers drift from plain decoding (on CPU greedy answers stayed identical). See
    benchmarks/RESULTS.md."""

    seed: int = -1
    """Sampling seed; -1 picks a random one."""

    source: Literal["hf", "modelscope"] = "hf"
    """Where `models pull` downloads from: Hugging Face or ModelScope."""


class ServerConfig(BaseModel):
    """An OpenAI-compatible model server that generates the answers instead of local llama.cpp.

    llama.cpp's ``llama-server``, llama-cpp-python's server, vLLM and Ollama's ``/v1`` all work;
    the documents, the search and the prompt stay on this machine, only the prompt is sent.
    """

    base_url: str | None = None
    """The server's OpenAI-compatible root, e.g. "http://gpu-box:8080/v1". Empty: llama.cpp here."""

    model: str | None = None
    """Model id on the server. Empty: the first (often the only) model the server lists."""

    api_key: SecretStr | None = None
    """Sent as "Authorization: Bearer ..." when the server requires a key."""

    context_length: int | None = Field(default=None, ge=512)
    """Context length when the server does not report one (llama-cpp-python's server, Ollama);
    when it does, the smaller of the two is used."""

    template: Literal["server", "minicpm2", "chatml", "completion"] = "server"
    """"server": send messages and let the server apply its chat template. A named template:
    render the prompt here and send it as a plain completion (for a server whose template is
    wrong, e.g. llama-cpp-python's falls back to Llama 2's format for MiniCPM-2B GGUFs)."""

    timeout_s: float = Field(default=120.0, gt=0)
    """Seconds to wait for the server to connect and for each piece of an answer."""

    parallel: int | None = Field(default=None, ge=1)
    """Answers the server generates at once (``serve`` runs that many turns together). Empty:
    what llama.cpp's server reports (its slots, ``--parallel``), 1 for llama-cpp-python's (one
    request at a time; unless started with ``--interrupt_requests false`` a new request ends the
    one streaming), 4 for servers that say nothing (vLLM and Ollama queue what they cannot
    batch)."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("a model server URL starts with http:// or https://")
        return value
