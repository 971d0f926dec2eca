"""Settings of the document library. Plain pydantic models: ``assistant.settings`` nests them."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator

from rag.ocr import OcrMode


class LibraryConfig(BaseModel):
    """How documents are chunked, embedded and searched."""

    embedding_model: str = "all-MiniLM-L6-v2"
    """sentence-transformers model: a name known offline, a local folder, or a hub id (online)."""

    query_prefix: str = ""
    """Text put before each query for models that want it (e5: "query: ", bge: an instruction)."""

    passage_prefix: str = ""
    """Text put before each passage for models that want it (e5: "passage: ")."""

    chunk_tokens: int = Field(default=256, ge=32)
    """Target chunk length in tokens of the embedding model."""

    chunk_overlap: int = Field(default=32, ge=0)
    """Tokens shared by consecutive chunks."""

    batch_size: int = Field(default=32, ge=1)
    """Chunks embedded per batch."""

    top_k: int = Field(default=5, ge=1)
    """Passages returned by a search."""

    rerank_model: str | None = None
    """Cross-encoder used to rerank fused hits; empty turns reranking off."""

    relevance_threshold: float = Field(default=0.35, ge=0, le=1)
    """Best hit score below which a search counts as "not in your documents" (cosine similarity of
    the embedding model; see benchmarks/RESULTS.md for how the default was calibrated). Chinese
    questions are judged by ``cjk_relevance_threshold`` instead when the query is known."""

    cjk_relevance_threshold: float = Field(default=0.2, ge=0, le=1)
    """For questions written mainly in Chinese (or Japanese, Korean), used instead of the cosine
    threshold by ``Library.judge``: the share of the question's content (CJK bigrams, question
    words left out, weighted by rarity) that the best passage must contain. Needed because an
    English embedding model's Chinese scores carry no relevance signal. A floor, not the main
    test: names the documents lack are caught before it (``rag.salience``); 0.4 refused 20 of 96
    answerable paraphrased questions, 0.2 refuses 3 (benchmarks/RESULTS.md)."""

    parse_timeout_s: float = Field(default=120.0, gt=0)
    """Time one PDF may take to parse before it is reported and skipped."""

    parse_memory_mb: int = Field(default=2048, ge=256)
    """Address-space limit of the worker that parses one PDF."""

    ocr: OcrMode = "auto"
    """Text recognition of PDF pages (offline, Chinese and English; ``rag.ocr``): "auto" reads
    pages that have no text layer, "always" also pages whose text layer is garbage or nearly
    empty, "off" reports image-only files as having no extractable text. About 1-10 s a page
    on 2 CPU cores (benchmarks/RESULTS.md)."""

    ocr_page_timeout_s: float = Field(default=120.0, gt=0)
    """Time the recognition of one page may take (on top of ``parse_timeout_s``, which bounds
    the rest of the file's parse) before the file is reported and skipped."""

    follow_symlinks: bool = False
    """Follow symbolic links while walking folders (links leaving the folder are still skipped). A
    document is known by its path with links resolved, so a link and its target are one document."""

    watch_debounce_s: float = Field(default=2.0, gt=0)
    """``ingest --watch``: quiet time after the last file event before the folders are updated, so
    a file being copied or saved in steps is indexed once, complete."""

    watch_rescan_s: float = Field(default=300.0, gt=0)
    """``ingest --watch``: the folders are rescanned this often even without file events
    (network and removable drives, folders that cannot be watched, changes made while the library
    was busy)."""


class StoreConfig(BaseModel):
    """Where the library keeps its passages: on this machine, or on a shared Chroma server."""

    url: str | None = None
    """A Chroma server (``chroma run``) holding the library for several machines, e.g.
    ``http://host:8000``; empty keeps everything in the embedded store under the data dir."""

    token: str | None = None
    """Sent as ``Authorization: Bearer`` when the server requires a token."""

    tenant: str = "default_tenant"
    """Chroma tenant on the server."""

    database: str = "default_database"
    """Chroma database on the server: one per team library."""

    @field_validator("url")
    @classmethod
    def _server_url(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not a server address; write it as http://host:8000")
        return url.rstrip("/")
