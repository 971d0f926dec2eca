"""Incremental ingest: walk, decide what changed, parse in a worker, embed here, record.

Two stages run at once so both cores work: a thread hashes files, has the parse worker process
extract them and chunks them, while the calling thread embeds and writes. Files are compared with
the manifest by size and mtime, then by content hash: unchanged files are skipped, moved or copied
files are re-pointed without embedding, changed files replace their chunks, and documents under
the walked folders that were not found are removed. Chunks whose exact text is already embedded
reuse that vector. See :mod:`rag.manifest` for the write order that survives ``kill -9``.

A file flows through both stages in bounded batches of chunks (pages from the worker, chunks to
the writer, vectors and passages to the store and the manifest), so the memory of an ingest does
not grow with the size of a file; the file counts as indexed only when its last batch is in.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path

import numpy as np

from rag.chunker import Chunk, chunk_pages
from rag.config import LibraryConfig
from rag.embedder import Embedder, Vectors
from rag.errors import IngestError
from rag.identity import document_identity
from rag.loaders import (
    DocumentEnd,
    DocumentLoadError,
    DocumentPart,
    ExtractedDocument,
    ExtractedPage,
)
from rag.manifest import DocumentRow, Manifest, chunk_id
from rag.parse_worker import ParseWorker
from rag.store import VectorStore
from rag.types import FileResult, FileStatus, IngestProgress, IngestReport
from rag.walker import FoundFile, Skipped, WalkResult, held_folders, is_under, walk

ProgressCallback = Callable[[IngestProgress], None]
_EMBED_SLICE = 4
"""Embedding batches per batch of chunks: one store write, one manifest write, one report."""
_QUEUED_EVENTS = 8
"""What the preparing thread may run ahead of the writer: a few batches, never a whole file."""
_IDENTITY_PAGES = 8
"""Pages read ahead, at most, to find the first one with text for the document's identity."""
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
    """The limits a parse ran under, recorded with a failure: changing one (OCR switched on,
    say) retries the file."""
    return (
        f"parse_timeout_s={config.parse_timeout_s:g} parse_memory_mb={config.parse_memory_mb} "
        f"ocr={config.ocr} ocr_page_timeout_s={config.ocr_page_timeout_s:g}"
    )


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
    """Delete vectors and passages a crash left without a manifest record; returns how many
    contents."""
    return sum(
        _sweep(manifest, store, collection, pending_hash)
        for collection, pending_hash in manifest.pending()
    )


def _sweep(manifest: Manifest, store: VectorStore, collection: str, content_hash: str) -> bool:
    """Delete what was stored of a pending content unless it turned out fully recorded."""
    swept = manifest.drop_unrecorded(collection, content_hash)
    if swept:
        store.delete_content(collection, content_hash)
    manifest.content_deleted(collection, content_hash)
    return swept


@dataclass
class _Parsed:
    """What the preparing thread hands to the writer first for one file."""

    found: FoundFile
    content_hash: str = ""
    action: str = "embed"
    """embed (its chunks follow) | link (content already indexed) | touch (same content, new
    mtime) | failed"""
    document: ExtractedDocument | None = None
    """For embed: the document's metadata, without its pages."""
    identity: str = ""
    reason: str | None = None


@dataclass(frozen=True)
class _Chunks:
    """The next batch of chunks of the file being embedded."""

    chunks: list[Chunk]


@dataclass(frozen=True)
class _Done:
    """The file being embedded has no more chunks."""

    pages: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Failed:
    """The file being embedded failed after some of its chunks were handed on."""

    reason: str


@dataclass(frozen=True)
class _Recognising:
    """A page of ``path`` is being recognised (OCR): progress while a scan is read."""

    path: str
    page: int
    pages: int


_Event = _Parsed | _Chunks | _Done | _Failed


class _PageStream:
    """A document as the parse worker streams it: metadata first, then pages, then warnings."""

    def __init__(self, parts: Iterator[DocumentPart]) -> None:
        head = next(parts)
        assert isinstance(head, ExtractedDocument), "a document's parts start with its metadata"
        self.head = head
        self.warnings: tuple[str, ...] = ()
        self.pages_seen: set[int] = set()
        self._parts = parts
        self._ahead: list[ExtractedPage] = []

    def identity(self, path: str) -> str:
        """The document's identity, from the first page with text (read ahead, kept for
        :meth:`pages`)."""
        while len(self._ahead) < _IDENTITY_PAGES and not any(p.text for p in self._ahead):
            page = self._next_page()
            if page is None:
                break
            self._ahead.append(page)
        return document_identity(replace(self.head, pages=tuple(self._ahead)), path)

    def pages(self) -> Iterator[ExtractedPage]:
        yield from self._ahead
        self._ahead = []
        while (page := self._next_page()) is not None:
            yield page

    def _next_page(self) -> ExtractedPage | None:
        part = next(self._parts, None)
        if part is None:  # the worker ended the stream without its last part
            raise DocumentLoadError("the parser's answer ended early")
        if isinstance(part, DocumentEnd):
            self.warnings = part.warnings
            return None
        assert isinstance(part, ExtractedPage)
        self.pages_seen.add(part.number)
        return part


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
        on_recognising: Callable[[_Recognising], None],
    ) -> None:
        super().__init__(name="rag-prepare", daemon=True)
        self.files, self.known = files, known
        self.indexed, self.outdated = set(indexed_hashes) - outdated, outdated
        self.embedder, self.config, self.password, self.cancel = embedder, config, password, cancel
        self.on_recognising = on_recognising
        self.output: queue.Queue[_Event | _Recognising | None] = queue.Queue(maxsize=_QUEUED_EVENTS)
        self.error: BaseException | None = None
        self.stop = threading.Event()
        """Set by the writer when it stops taking files: finish the current batch, then exit."""

    def run(self) -> None:
        try:
            with ParseWorker(
                self.config.parse_timeout_s,
                self.config.parse_memory_mb,
                self.config.ocr,
                self.config.ocr_page_timeout_s,
            ) as worker:
                for found in self.files:
                    if self._stopping():
                        break
                    self._prepare(found, worker)
        except BaseException as error:  # handed to the writer thread, which raises it
            self.error = error
        finally:
            self.output.put(None)

    def events(self) -> Iterator[_Event]:
        """What it hands on, in order, until it has finished (exhausted for good then). Pages
        being recognised go to ``on_recognising`` on the way, in the thread that reads."""
        while (event := self.output.get()) is not None:
            if isinstance(event, _Recognising):
                self.on_recognising(event)
            else:
                yield event

    def _stopping(self) -> bool:
        return self.cancel.is_set() or self.stop.is_set()

    def _prepare(self, found: FoundFile, worker: ParseWorker) -> None:
        try:
            digest = content_hash(found.path)
        except FileNotFoundError:
            reason = "file vanished before it could be read"
            self.output.put(_Parsed(found, action="failed", reason=reason))
            return
        except OSError as error:
            reason = f"cannot read: {error.strerror}"
            self.output.put(_Parsed(found, action="failed", reason=reason))
            return
        previous = self.known.get(found.path)
        if previous is not None and previous.content_hash == digest and digest not in self.outdated:
            self.output.put(_Parsed(found, digest, action="touch"))
        elif digest in self.indexed:
            self.output.put(_Parsed(found, digest, action="link"))
        else:
            self._parse_and_chunk(found, digest, worker)

    def _parse_and_chunk(self, found: FoundFile, digest: str, worker: ParseWorker) -> None:
        """Hand on the file's chunks a batch at a time as the worker's pages come in. A failure
        before the first batch is the file's only event; after it, the last one."""
        parts = worker.stream(
            Path(found.path),
            self.password,
            lambda page, pages: self._recognising(found, page, pages),
        )
        started = False
        try:
            document = _PageStream(parts)
            identity = document.identity(found.path)
            budget, overlap = chunk_budget(self.config, self.embedder)
            chunks = chunk_pages(
                document.pages(),
                document.head.outline,
                self.embedder.token_offsets,
                budget,
                overlap,
            )
            header = _Parsed(found, digest, document=document.head, identity=identity)
            while batch := list(islice(chunks, self.config.batch_size * _EMBED_SLICE)):
                if not started:
                    self.output.put(header)
                    started = True
                self.output.put(_Chunks(batch))
                if self._stopping():
                    return
            if not started:
                self.output.put(header)
                started = True
            self.indexed.add(digest)
            self.output.put(_Done(len(document.pages_seen), document.warnings))
            return
        except DocumentLoadError as error:
            reason = str(error)
        except Exception as error:  # one file's surprise must not end the ingest
            reason = f"failed: {type(error).__name__}: {error}"
        finally:
            parts.close()  # stops a worker still sending this file
        self.output.put(
            _Failed(reason) if started else _Parsed(found, digest, action="failed", reason=reason)
        )

    def _recognising(self, found: FoundFile, page: int, pages: int) -> None:
        """Say which page is read next; stop before it when the ingest stops (a scan's pages
        take seconds each, a cancel should not wait for all of them)."""
        if self._stopping():
            raise DocumentLoadError("cancelled")
        self.output.put(_Recognising(found.path, page, pages))


class _Meter:
    """Counts for progress reports. The time left is the bytes still to process at the rate
    measured since the first file finished: the first file's time also holds the start-up (the
    embedding model loading, the parse worker starting), and counting it made the first estimate
    a hundred times too long."""

    def __init__(
        self, files_total: int, bytes_total: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.files_total, self.bytes_total = files_total, max(1, bytes_total)
        self.files_done = self.pages_done = self.chunks_done = self.bytes_done = 0
        self.recognising: _Recognising | None = None
        """The page being recognised, of a file not finished yet."""
        self.clock = clock
        self.started = clock()
        self.warm: tuple[float, int] | None = None
        """When the first file finished, and the bytes done by then."""

    def file_finished(self, path: str, size: int) -> None:
        if self.recognising is not None and self.recognising.path == path:
            self.recognising = None
        self.files_done += 1
        self.bytes_done += size
        if self.warm is None:
            self.warm = (self.clock(), self.bytes_done)

    def seconds_left(self) -> float | None:
        """None until a file after the first has finished (nothing to measure a rate on)."""
        if self.warm is None:
            return None
        since, bytes_then = self.warm
        measured, elapsed = self.bytes_done - bytes_then, self.clock() - since
        if measured <= 0 or elapsed <= 0:
            return None
        return max(0.0, elapsed * (self.bytes_total - self.bytes_done) / measured)

    def snapshot(self, current: str | None, last: FileResult | None) -> IngestProgress:
        """Pages count those of finished files, and of ``current`` the pages read before the
        one being recognised (so a long scan's count moves page by page)."""
        elapsed = self.clock() - self.started
        rate = self.chunks_done / elapsed if elapsed > 0 else 0.0
        reading = self.recognising
        if reading is not None and reading.path != current:
            reading = None
        return IngestProgress(
            files_done=self.files_done,
            files_total=self.files_total,
            pages_done=self.pages_done + (reading.page - 1 if reading else 0),
            chunks_done=self.chunks_done,
            current_file=current,
            chunks_per_s=rate,
            eta_s=self.seconds_left(),
            last_result=last,
            ocr_page=reading.page if reading else None,
            file_pages=reading.pages if reading else 0,
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
        self,
        paths: Sequence[Path],
        password: str | None = None,
        retry_failed: bool = False,
        remove_emptied: bool = False,
    ) -> IngestReport:
        """Index ``paths``. Files that failed before are parsed again when they changed, when a
        password is given, when the parse limits changed, or with ``retry_failed``. Documents of
        a folder that now reads as empty are kept (an unmounted drive) unless ``remove_emptied``
        confirms they are gone."""
        started = time.monotonic()
        walked = walk(list(paths), self.config.follow_symlinks)
        known = {
            row.path: row for row in self.manifest.documents_under(self.collection, walked.roots)
        }
        drives = self.manifest.drives_under(self.collection, walked.roots)
        held: list[str] = []
        if not remove_emptied:
            held = walked.hold_emptied(sorted(known))
            sizes = {path: (row.size, row.mtime_ns) for path, row in known.items()}
            walked.hold_other_drives(drives, sizes)
        self.results += [_skipped_result(skipped) for skipped in walked.skipped]
        found_paths = {found.path for found in walked.files}
        gone = {
            path: row
            for path, row in known.items()
            if path not in found_paths and walked.was_read(path)
        }
        movable = {  # kept while their folder reads empty, unless found again elsewhere
            path: row
            for path, row in known.items()
            if path not in found_paths and is_under(path, held)
        }
        work = self._triage(walked.files, known, password, retry_failed)
        self._meter = _Meter(len(walked.files), sum(found.size for found in work))
        self._meter.files_done = len(walked.files) - len(work)
        self._report(None, None)
        moved_from = self._process(work, known, {**gone, **movable}, password)
        kept = sorted(path for path in movable if path not in moved_from)
        for skipped in held_folders(held, kept):
            self.results.append(_skipped_result(skipped))
        if not self.cancel.is_set():
            moved = {path: row for path, row in movable.items() if path in moved_from}
            self._remove_gone({**gone, **moved}, moved_from)
            self._forget_gone_failures(walked, found_paths)
            self.manifest.record_drives(
                self.collection, walked.roots, walked.drives_to_record(drives)
            )
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
            self._recognising,
        )
        preparer.start()
        events = preparer.events()
        try:
            for item in events:
                if self.cancel.is_set():
                    break
                assert isinstance(item, _Parsed), "a file's events start with _Parsed"
                result = self._write(item, events, known, gone_by_hash, moved_from)
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
        events: Iterator[_Event],
        known: dict[str, DocumentRow],
        gone_by_hash: dict[str, str],
        moved_from: set[str],
    ) -> FileResult:
        found = item.found
        row = DocumentRow(found.path, found.size, found.mtime_ns, item.content_hash)
        if item.action == "failed":
            return self._record_failure(row, item.reason or "unknown error")
        if item.action == "touch":
            self.manifest.touch(self.collection, found.path, found.size, found.mtime_ns)
            return FileResult(found.path, "unchanged")
        if item.action == "link":
            return self._link(row, gone_by_hash, moved_from)
        return self._embed_and_record(row, item, events, found.path in known)

    def _record_failure(self, row: DocumentRow, reason: str) -> FileResult:
        self.manifest.record_failure(
            self.collection, row.path, row.size, row.mtime_ns, reason, parse_limits(self.config)
        )
        return FileResult(row.path, "failed", reason=reason)

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
        self, row: DocumentRow, header: _Parsed, events: Iterator[_Event], existed: bool
    ) -> FileResult:
        """Store the file's batches of chunks as they come; record the file after the last.

        Interrupted (cancel, ``kill -9``), the content stays pending and :func:`recover` sweeps
        it; a file failing part way is swept at once, then recorded as failed.
        """
        assert header.document is not None
        self.manifest.begin_content(self.collection, row.content_hash)
        if row.content_hash in self._outdated:  # re-indexed in the current passage format
            self.store.delete_content(self.collection, row.content_hash)
            self._outdated.discard(row.content_hash)
        chunks = 0
        for event in events:
            if self.cancel.is_set():
                break
            if isinstance(event, _Chunks):
                self._store_batch(row, header.identity, event.chunks)
                chunks += len(event.chunks)
            elif isinstance(event, _Failed):
                _sweep(self.manifest, self.store, self.collection, row.content_hash)
                return self._record_failure(row, event.reason)
            else:
                assert isinstance(event, _Done), "a file's chunks end with _Done or _Failed"
                return self._record(row, header.document, header.identity, event, chunks, existed)
        return FileResult(row.path, "failed", reason="cancelled")

    def _store_batch(self, row: DocumentRow, identity: str, chunks: list[Chunk]) -> None:
        """Step 2 of the write order for one batch: vectors into the store, then the passages."""
        texts = [
            matched_text(self.embedder, identity, chunk.heading_path, chunk.text)
            for chunk in chunks
        ]
        text_hashes = [hashlib.sha1(text.encode()).hexdigest() for text in texts]
        ids = [chunk_id(row.content_hash, chunk.index) for chunk in chunks]
        vectors = self._vectors(texts, text_hashes)
        self.store.upsert(self.collection, ids, vectors, row.content_hash)
        self.manifest.stage_chunks(self.collection, row.content_hash, chunks, text_hashes)
        self._meter.chunks_done += len(chunks)
        self._report(row.path, None)

    def _record(
        self,
        row: DocumentRow,
        document: ExtractedDocument,
        identity: str,
        done: _Done,
        chunks: int,
        existed: bool,
    ) -> FileResult:
        warnings = "; ".join(done.warnings) or None
        released = self.manifest.commit_content(
            self.collection, row, (), (), done.pages, document.title, warnings, identity
        )
        self._release(released)
        self._meter.pages_done += done.pages
        status: FileStatus = "updated" if existed else "indexed"
        return FileResult(row.path, status, done.pages, chunks, warnings)

    def _vectors(self, texts: list[str], text_hashes: list[str]) -> Vectors:
        """Vectors of one batch, reusing stored ones for texts embedded before."""
        reusable = self.manifest.chunk_ids_by_text(self.collection, text_hashes)
        stored = self.store.vectors(self.collection, sorted(set(reusable.values())))
        missing = [i for i, h in enumerate(text_hashes) if reusable.get(h) not in stored]
        fresh = self.embedder.embed_passages([texts[i] for i in missing])
        vectors: list[Vectors] = [
            stored[reusable[h]] if reusable.get(h) in stored else fresh[0] for h in text_hashes
        ]
        for position, index in enumerate(missing):
            vectors[index] = fresh[position]
        return np.stack(vectors)

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
        self._meter.file_finished(item.found.path, item.found.size)
        self._report(None, result)

    def _recognising(self, event: _Recognising) -> None:
        self._meter.recognising = event
        self._report(event.path, None)

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


def _skipped_result(skipped: Skipped) -> FileResult:
    status: FileStatus = "failed" if skipped.failed else "skipped"
    return FileResult(skipped.path, status, reason=skipped.reason)
