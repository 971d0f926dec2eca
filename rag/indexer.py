"""Incremental ingest: walk, decide what changed, parse in a worker, embed here, record.

Two stages run at once so both cores work: a thread hashes files and has the parse worker process
extract and chunk them, while the calling thread embeds and writes. Files are compared with the
manifest by size and mtime, then by content hash: unchanged files are skipped, moved or copied
files are re-pointed without embedding, changed files replace their chunks, and documents under
the walked folders that were not found are removed. Chunks whose exact text is already embedded
reuse that vector. See :mod:`rag.manifest` for the write order that survives ``kill -9``.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag.chunker import Chunk, chunk_document
from rag.config import LibraryConfig
from rag.embedder import Embedder, Vectors
from rag.errors import IngestError
from rag.identity import document_identity
from rag.loaders import DocumentLoadError, ExtractedDocument
from rag.manifest import DocumentRow, Manifest, chunk_id
from rag.parse_worker import ParseWorker
from rag.store import VectorStore
from rag.types import FileResult, FileStatus, IngestProgress, IngestReport
from rag.walker import FoundFile, WalkResult, walk

ProgressCallback = Callable[[IngestProgress], None]
_EMBED_SLICE = 4
"""Embedding batches per store write and progress report."""
CONTEXT_TOKENS = 32
"""Embedding-model tokens of document title and heading path put before each passage."""


def content_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def chunk_budget(config: LibraryConfig, embedder: Embedder) -> tuple[int, int]:
    """Tokens per chunk and tokens of overlap: what fits the model after the passage context."""
    budget = min(config.chunk_tokens, embedder.max_tokens - CONTEXT_TOKENS)
    return budget, min(config.chunk_overlap, budget // 2)


def parse_limits(config: LibraryConfig) -> str:
    """The limits a parse ran under, recorded with a failure: raising one retries the file."""
    return f"parse_timeout_s={config.parse_timeout_s:g} parse_memory_mb={config.parse_memory_mb}"


def matched_text(embedder: Embedder, identity: str, heading_path: str | None, text: str) -> str:
    """What the embedder sees: the document's title and the heading path, then the passage.

    The context is cut to :data:`CONTEXT_TOKENS` so the passage itself is never truncated.
    Ingest and an embedding-model switch (:mod:`rag.reembed`) both embed exactly this.
    """
    title = identity.split("\n", 1)[0]
    context = " · ".join(part for part in (title, heading_path) if part)
    if not context:
        return text
    spans = embedder.token_offsets([context])[0]
    if len(spans) > CONTEXT_TOKENS:
        context = context[: spans[CONTEXT_TOKENS - 1][1]]
    return f"{context}\n{text}"


def recover(manifest: Manifest, store: VectorStore) -> int:
    """Delete vectors a crash left without a manifest record; returns how many contents."""
    swept = 0
    for collection, pending_hash in manifest.pending():
        if manifest.drop_unrecorded(collection, pending_hash):
            store.delete_content(collection, pending_hash)
            swept += 1
        manifest.content_deleted(collection, pending_hash)
    return swept


@dataclass
class _Parsed:
    """What the preparing thread hands to the writer for one file."""

    found: FoundFile
    content_hash: str = ""
    action: str = "embed"
    """embed | link (content already indexed) | touch (same content, new mtime) | failed"""
    document: ExtractedDocument | None = None
    chunks: list[Chunk] = field(default_factory=list)
    identity: str = ""
    reason: str | None = None


class _Preparer(threading.Thread):
    """Hashes, parses (in the worker process) and chunks files ahead of the embedder."""

    def __init__(
        self,
        files: Sequence[FoundFile],
        known: dict[str, DocumentRow],
        indexed_hashes: set[str],
        outdated: set[str],
        embedder: Embedder,
        config: LibraryConfig,
        password: str | None,
        cancel: threading.Event,
    ) -> None:
        super().__init__(name="rag-prepare", daemon=True)
        self.files, self.known = files, known
        self.indexed, self.outdated = set(indexed_hashes) - outdated, outdated
        self.embedder, self.config, self.password, self.cancel = embedder, config, password, cancel
        self.output: queue.Queue[_Parsed | None] = queue.Queue(maxsize=3)
        self.error: BaseException | None = None
        self.stop = threading.Event()
        """Set by the writer when it stops taking files: finish the current one, then exit."""

    def run(self) -> None:
        try:
            with ParseWorker(self.config.parse_timeout_s, self.config.parse_memory_mb) as worker:
                for found in self.files:
                    if self.cancel.is_set() or self.stop.is_set():
                        break
                    self.output.put(self._prepare(found, worker))
        except BaseException as error:  # handed to the writer thread, which raises it
            self.error = error
        finally:
            self.output.put(None)

    def _prepare(self, found: FoundFile, worker: ParseWorker) -> _Parsed:
        try:
            digest = content_hash(found.path)
        except FileNotFoundError:
            return _Parsed(found, action="failed", reason="file vanished before it could be read")
        except OSError as error:
            return _Parsed(found, action="failed", reason=f"cannot read: {error.strerror}")
        previous = self.known.get(found.path)
        if previous is not None and previous.content_hash == digest and digest not in self.outdated:
            return _Parsed(found, digest, action="touch")
        if digest in self.indexed:
            return _Parsed(found, digest, action="link")
        try:
            document = worker.parse(Path(found.path), self.password)
            budget, overlap = chunk_budget(self.config, self.embedder)
            chunks = chunk_document(document, self.embedder.token_offsets, budget, overlap)
            identity = document_identity(document, found.path)
        except DocumentLoadError as error:
            return _Parsed(found, digest, action="failed", reason=str(error))
        except Exception as error:  # one file's surprise must not end the ingest
            reason = f"failed: {type(error).__name__}: {error}"
            return _Parsed(found, digest, action="failed", reason=reason)
        self.indexed.add(digest)
        # the chunks hold the text now: a queued file keeps one copy of it, not two
        document = replace(document, pages=tuple(replace(page, text="") for page in document.pages))
        return _Parsed(found, digest, document=document, chunks=chunks, identity=identity)


class _Meter:
    """Counts for progress reports; the ETA comes from bytes still to process."""

    def __init__(self, files_total: int, bytes_total: int) -> None:
        self.files_total, self.bytes_total = files_total, max(1, bytes_total)
        self.files_done = self.pages_done = self.chunks_done = self.bytes_done = 0
        self.started = time.monotonic()
        self.embed_seconds = 0.0

    def snapshot(self, current: str | None, last: FileResult | None) -> IngestProgress:
        elapsed = time.monotonic() - self.started
        rate = self.chunks_done / elapsed if elapsed > 0 else 0.0
        eta = None
        if self.bytes_done and elapsed > 0:
            eta = elapsed * (self.bytes_total - self.bytes_done) / self.bytes_done
        return IngestProgress(
            files_done=self.files_done,
            files_total=self.files_total,
            pages_done=self.pages_done,
            chunks_done=self.chunks_done,
            current_file=current,
            chunks_per_s=rate,
            eta_s=max(0.0, eta) if eta is not None else None,
            last_result=last,
        )


class Ingest:
    """One ingest run into one collection. The caller holds the write lock."""

    def __init__(
        self,
        manifest: Manifest,
        store: VectorStore,
        embedder: Embedder,
        config: LibraryConfig,
        collection: str,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.manifest, self.store, self.embedder, self.config = manifest, store, embedder, config
        self.collection = collection
        self.progress = progress
        self.cancel = cancel or threading.Event()
        self.results: list[FileResult] = []
        self._meter = _Meter(0, 0)
        self._outdated = manifest.outdated_contents(collection)

    def run(
        self, paths: Sequence[Path], password: str | None = None, retry_failed: bool = False
    ) -> IngestReport:
        """Index ``paths``. Files that failed before are parsed again when they changed, when a
        password is given, when the parse limits changed, or with ``retry_failed``."""
        started = time.monotonic()
        walked = walk(list(paths), self.config.follow_symlinks)
        for skipped in walked.skipped:
            status: FileStatus = "failed" if skipped.failed else "skipped"
            self.results.append(FileResult(skipped.path, status, reason=skipped.reason))
        known = {
            row.path: row for row in self.manifest.documents_under(self.collection, walked.roots)
        }
        found_paths = {found.path for found in walked.files}
        gone = {
            path: row
            for path, row in known.items()
            if path not in found_paths and walked.was_read(path)
        }
        work = self._triage(walked.files, known, password, retry_failed)
        self._meter = _Meter(len(walked.files), sum(found.size for found in work))
        self._meter.files_done = len(walked.files) - len(work)
        self._report(None, None)
        moved_from = self._process(work, known, gone, password)
        if not self.cancel.is_set():
            self._remove_gone(gone, moved_from)
            self._forget_gone_failures(walked, found_paths)
        self.results.sort(key=lambda result: result.path)
        return IngestReport(self.collection, self.results, time.monotonic() - started)

    def _triage(
        self,
        files: Sequence[FoundFile],
        known: dict[str, DocumentRow],
        password: str | None,
        retry_failed: bool,
    ) -> list[FoundFile]:
        """Settle files whose size and mtime say nothing changed; return the rest.

        A recorded failure is replayed only while the file, the parse limits it failed under and
        the password are unchanged, and ``retry_failed`` is not asked for.
        """
        limits = parse_limits(self.config)
        work: list[FoundFile] = []
        for found in files:
            row = known.get(found.path)
            if (
                row is not None
                and (row.size, row.mtime_ns) == (found.size, found.mtime_ns)
                and row.content_hash not in self._outdated
            ):
                self.results.append(FileResult(found.path, "unchanged"))
                continue
            failure = self.manifest.failure(self.collection, found.path)
            if (
                failure is not None
                and (failure.size, failure.mtime_ns) == (found.size, found.mtime_ns)
                and failure.limits == limits
                and password is None
                and not retry_failed
            ):
                self.results.append(FileResult(found.path, "failed", reason=failure.reason))
                continue
            work.append(found)
        return work

    def _process(
        self,
        work: Sequence[FoundFile],
        known: dict[str, DocumentRow],
        gone: dict[str, DocumentRow],
        password: str | None,
    ) -> set[str]:
        gone_by_hash = {row.content_hash: path for path, row in sorted(gone.items())}
        moved_from: set[str] = set()
        preparer = _Preparer(
            work,
            known,
            self.manifest.content_hashes(self.collection),
            self._outdated,
            self.embedder,
            self.config,
            password,
            self.cancel,
        )
        preparer.start()
        try:
            for item in iter(preparer.output.get, None):
                if self.cancel.is_set():
                    break
                result = self._write(item, known, gone_by_hash, moved_from)
                self._finish_file(item, result)
        finally:  # also when writing raised: no preparing thread or parse process left behind
            preparer.stop.set()
            _drain(preparer)
        if preparer.error is not None:
            raise IngestError(f"preparing files failed: {preparer.error}") from preparer.error
        return moved_from

    def _write(
        self,
        item: _Parsed,
        known: dict[str, DocumentRow],
        gone_by_hash: dict[str, str],
        moved_from: set[str],
    ) -> FileResult:
        found = item.found
        row = DocumentRow(found.path, found.size, found.mtime_ns, item.content_hash)
        if item.action == "failed":
            reason = item.reason or "unknown error"
            self.manifest.record_failure(
                self.collection,
                found.path,
                found.size,
                found.mtime_ns,
                reason,
                parse_limits(self.config),
            )
            return FileResult(found.path, "failed", reason=reason)
        if item.action == "touch":
            self.manifest.touch(self.collection, found.path, found.size, found.mtime_ns)
            return FileResult(found.path, "unchanged")
        if item.action == "link":
            return self._link(row, gone_by_hash, moved_from)
        assert item.document is not None
        return self._embed_and_record(
            row, item.document, item.chunks, item.identity, found.path in known
        )

    def _link(
        self, row: DocumentRow, gone_by_hash: dict[str, str], moved_from: set[str]
    ) -> FileResult:
        if not self.manifest.has_content(self.collection, row.content_hash):
            reason = "same content as a file that failed in this run"
            return FileResult(row.path, "failed", reason=reason)
        self._release(self.manifest.link_document(self.collection, row))
        old_path = gone_by_hash.pop(row.content_hash, None)
        if old_path is not None:
            moved_from.add(old_path)
            return FileResult(row.path, "moved", reason=f"moved from {old_path}")
        same = self.manifest.path_of(self.collection, row.content_hash)
        return FileResult(row.path, "indexed", reason=f"same content as {same}; not re-embedded")

    def _embed_and_record(
        self,
        row: DocumentRow,
        document: ExtractedDocument,
        chunks: list[Chunk],
        identity: str,
        existed: bool,
    ) -> FileResult:
        texts = [
            matched_text(self.embedder, identity, chunk.heading_path, chunk.text)
            for chunk in chunks
        ]
        text_hashes = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
        self.manifest.begin_content(self.collection, row.content_hash)
        if row.content_hash in self._outdated:  # re-indexed in the current passage format
            self.store.delete_content(self.collection, row.content_hash)
            self._outdated.discard(row.content_hash)
        ids = [chunk_id(row.content_hash, chunk.index) for chunk in chunks]
        for start, vectors in self._vectors(texts, text_hashes):
            if self.cancel.is_set():
                return FileResult(row.path, "failed", reason="cancelled")
            self.store.upsert(
                self.collection, ids[start : start + len(vectors)], vectors, row.content_hash
            )
            self._meter.chunks_done += len(vectors)
            self._report(row.path, None)
        warnings = "; ".join(document.warnings) or None
        released = self.manifest.commit_content(
            self.collection,
            row,
            chunks,
            text_hashes,
            len(document.pages),
            document.title,
            warnings,
            identity,
        )
        self._release(released)
        self._meter.pages_done += len(document.pages)
        status: FileStatus = "updated" if existed else "indexed"
        return FileResult(row.path, status, len(document.pages), len(chunks), warnings)

    def _vectors(self, texts: list[str], text_hashes: list[str]) -> Iterator[tuple[int, Vectors]]:
        """Vectors slice by slice, reusing stored ones for texts embedded before."""
        reusable = self.manifest.chunk_ids_by_text(self.collection, text_hashes)
        stored = self.store.vectors(self.collection, sorted(set(reusable.values())))
        step = self.config.batch_size * _EMBED_SLICE
        for start in range(0, len(texts), step):
            hashes = text_hashes[start : start + step]
            missing = [i for i, h in enumerate(hashes) if reusable.get(h) not in stored]
            fresh = self.embedder.embed_passages([texts[start + i] for i in missing])
            vectors: list[Vectors] = [
                stored[reusable[h]] if reusable.get(h) in stored else fresh[0] for h in hashes
            ]
            for position, index in enumerate(missing):
                vectors[index] = fresh[position]
            yield start, np.stack(vectors)

    def _release(self, content: str | None) -> None:
        """Delete the vectors of a content the manifest no longer references."""
        if content is not None:
            self.store.delete_content(self.collection, content)
            self.manifest.content_deleted(self.collection, content)

    def _remove_gone(self, gone: dict[str, DocumentRow], moved_from: set[str]) -> None:
        for path in sorted(gone):
            released, chunks = self.manifest.remove_document(self.collection, path)
            self._release(released)
            if path not in moved_from:
                self.results.append(FileResult(path, "removed", chunks=chunks))

    def _forget_gone_failures(self, walked: WalkResult, found: set[str]) -> None:
        for failure in self.manifest.failures_under(self.collection, walked.roots):
            if failure.path not in found and walked.was_read(failure.path):
                self.manifest.forget_failure(self.collection, failure.path)

    def _finish_file(self, item: _Parsed, result: FileResult) -> None:
        self.results.append(result)
        self._meter.files_done += 1
        self._meter.bytes_done += item.found.size
        self._report(None, result)

    def _report(self, current: str | None, last: FileResult | None) -> None:
        if self.progress is not None:
            self.progress(self._meter.snapshot(current, last))


def _drain(preparer: _Preparer) -> None:
    """Let a cancelled preparer finish its current file and exit."""
    while preparer.is_alive():
        try:
            preparer.output.get(timeout=0.1)
        except queue.Empty:
            continue
    preparer.join()
