"""The library's public records: evidence returned by a search and the outcome of an ingest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with where it came from."""

    chunk_id: str
    file: str
    """Path of the document as ingested."""
    page_start: int
    """1-based first page of the passage."""
    page_end: int
    score: float
    """Higher is better; comparable within one search."""
    text: str
    heading: str | None = None
    page_label: str | None = None
    """The page's printed label (e.g. "iv") when the PDF has one."""
    content_hash: str = ""
    """The document content the passage belongs to (one content may sit at several paths)."""
    before: str = ""
    """The text just before the passage in its document (overlap removed), to widen it."""
    after: str = ""
    """The text just after it."""
    ocr: bool = False
    """Its text was recognised from a scanned page (OCR), so a word may be misread."""

    @property
    def page(self) -> str:
        """``"3"`` or ``"3-4"`` for a passage that spans pages."""
        if self.page_end != self.page_start:
            return f"{self.page_start}-{self.page_end}"
        return str(self.page_start)


@dataclass(frozen=True)
class Relevance:
    """Whether a search found what the question asks about, and if not, what is missing."""

    relevant: bool
    missing: tuple[str, ...] = ()
    """Salient terms of the question (names, identifiers, periods) that the documents found, or
    the whole collection (``mentioned_nowhere``), do not mention."""
    mentioned_nowhere: bool = False
    covers: tuple[tuple[str, int], ...] = ()
    """What the collection does cover: the commonest document titles, each with how many
    documents carry it."""
    documents: int = 0
    """How many documents the collection holds."""


FileStatus = Literal["indexed", "unchanged", "updated", "moved", "removed", "failed", "skipped"]
"""``skipped``: not a candidate (a symbolic link not followed, an unsupported file given)."""


@dataclass(frozen=True)
class FileResult:
    """What an ingest did with one file."""

    path: str
    status: FileStatus
    pages: int = 0
    chunks: int = 0
    reason: str | None = None
    """Why a file failed, or a warning (e.g. pages without extractable text)."""


@dataclass(frozen=True)
class IngestProgress:
    """A snapshot sent to the progress callback while an ingest runs."""

    files_done: int
    files_total: int
    pages_done: int
    chunks_done: int
    current_file: str | None
    chunks_per_s: float
    eta_s: float | None
    last_result: FileResult | None = None
    ocr_page: int | None = None
    """The page of ``current_file`` being recognised (OCR takes seconds a page), 1-based."""
    file_pages: int = 0
    """How many pages ``current_file`` has, while one of them is being recognised."""


@dataclass
class IngestReport:
    collection: str
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: FileStatus) -> int:
        return sum(1 for result in self.results if result.status == status)


@dataclass(frozen=True)
class DocumentRecord:
    """An indexed document as listed by ``docs list``."""

    path: str
    collection: str
    content_hash: str
    pages: int
    chunks: int
    indexed_at: float
    title: str | None = None
    status: str = "ok"
    """"ok", or a warning such as "3 pages without text"."""


@dataclass(frozen=True)
class EmbeddingSpec:
    """The embedding model a collection's vectors come from, with the prefixes it reads."""

    model: str
    """What the collection records: a bundled name, a hub id or a folder."""
    query_prefix: str = ""
    passage_prefix: str = ""


@dataclass(frozen=True)
class SwitchProgress:
    """Passages re-embedded so far by an embedding-model switch, of how many."""

    done: int
    total: int


@dataclass(frozen=True)
class SwitchReport:
    """The outcome of an embedding-model switch."""

    collection: str
    spec: EmbeddingSpec
    passages: int
    """Passages the collection holds, all now embedded with ``spec``."""
    embedded: int
    """Passages embedded by this run (fewer when it resumed an interrupted switch)."""
    seconds: float
