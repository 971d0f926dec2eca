"""Parse files in a child process with a time and an address-space limit.

Some PDFs make a parser run for minutes or allocate gigabytes, and a crash inside PDFium would take
the whole ingest down with it. Parsing in a child bounds all three: the parent waits at most
``timeout_s``, the child cannot map more than ``memory_mb``, and a dead child is replaced.

A document comes back part by part (:func:`rag.loaders.stream_document`), each part a message, so
neither process holds a large text file whole; the pipe holds the child back while the parent
chunks and embeds. Before it recognises a page (:mod:`rag.ocr`) the child says so, and that page
gets its own time limit: a long scan takes seconds per page, not one limit for the whole file. A
page past its limit is skipped, not the file: the child is replaced and goes on after that page.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from multiprocessing.connection import Connection
from pathlib import Path

from rag.loaders import (
    DocumentEnd,
    DocumentLoadError,
    DocumentPart,
    ExtractedDocument,
    ExtractedPage,
    OcrResume,
    collect,
    stream_document,
)
from rag.ocr import OcrMode

_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from rag.parse_worker import serve; serve(int(sys.argv[2]), int(sys.argv[3]))"
)
"""The child's program. Run with ``-I`` (isolated: neither the current directory nor PYTHON*
variables reach ``sys.path``), it puts this package's root first, so a ``rag/`` package in the
folder the user runs from is never imported (and never runs as code)."""


_CHILD_ENVIRONMENT = {**os.environ, "MALLOC_ARENA_MAX": "2"}
"""glibc reserves address space for a malloc arena per allocating thread (64 MB each), and OCR's
onnxruntime threads made that 0.4 GB of the worker's limit (peak 1.76 GB for one page, 1.39 GB
with two arenas): few arenas leave the limit to the parsing."""


def serve(memory_bytes: int, parent: int) -> None:
    """Child loop: get ``(path, password, ocr mode, resume)``, answer ``("part", part)`` for each
    part of the document, the last being its :class:`DocumentEnd`, or ``("error", reason)``
    (possibly after some parts); ``("ocr", (page number, pages))`` comes before a page that is
    being recognised.

    Requests come on stdin and answers go out on the original stdout; ``sys.stdout`` is pointed at
    stderr so a stray print from a library cannot corrupt the answers.
    """
    import resource

    _die_with(parent)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    requests = Connection(os.dup(0), writable=False)
    answers = Connection(os.dup(1), readable=False)
    sys.stdout = sys.stderr
    while True:
        try:
            path, password, ocr, resume = requests.recv()
        except EOFError:
            return
        try:
            for part in stream_document(
                Path(path),
                password,
                ocr=ocr,
                on_ocr=lambda page, pages: answers.send(("ocr", (page, pages))),
                resume=resume,
            ):
                answers.send(("part", part))
            continue
        except DocumentLoadError as error:
            reason = str(error)
        except MemoryError:
            reason = f"needs more than {memory_bytes // 2**20} MB to parse; skipped"
        except Exception as error:  # any parser bug is this file's problem, not the ingest's
            reason = f"parser failed: {type(error).__name__}: {error}"
        answers.send(("error", reason))


def _die_with(parent: int) -> None:
    """Be killed when the ingest that started this worker dies (``kill -9`` included): only that
    ingest enforces the time limit, so an orphan would parse a pathological file forever. (On
    Linux the signal comes when the starting *thread* ends: a worker is used by one thread.)"""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before that took effect
        raise SystemExit(1)


class ParseWorker:
    """One child process that parses files on request; restarted after a timeout or a crash.

    The child is a fresh, isolated interpreter (``python -I``, see ``_CHILD``), not a fork: it
    shares no threads or memory maps with a parent that has loaded torch, so the address-space
    limit measures the parser alone, no caller's ``__main__`` is re-imported, and nothing in the
    current directory shadows this package.
    """

    def __init__(
        self,
        timeout_s: float,
        memory_mb: int,
        ocr: OcrMode = "auto",
        ocr_page_timeout_s: float = 120.0,
    ) -> None:
        self.timeout_s = timeout_s
        self.memory_bytes = memory_mb * 2**20
        self.ocr: OcrMode = ocr
        self.ocr_page_timeout_s = ocr_page_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._requests: Connection | None = None
        self._answers: Connection | None = None

    def _start(self) -> tuple[Connection, Connection]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-c",
                _CHILD,
                _PACKAGE_ROOT,
                str(self.memory_bytes),
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_CHILD_ENVIRONMENT,
        )
        assert process.stdin is not None and process.stdout is not None
        self._requests = Connection(os.dup(process.stdin.fileno()), readable=False)
        self._answers = Connection(os.dup(process.stdout.fileno()), writable=False)
        process.stdin.close()
        process.stdout.close()
        self._process = process
        return self._requests, self._answers

    def parse(self, path: Path, password: str | None = None) -> ExtractedDocument:
        """Parse ``path`` whole; raise :class:`DocumentLoadError` saying why when it cannot be."""
        return collect(self.stream(path, password))

    def stream(
        self,
        path: Path,
        password: str | None = None,
        on_ocr: Callable[[int, int], None] | None = None,
    ) -> Generator[DocumentPart, None, None]:
        """The parts of ``path`` as the child sends them (see :data:`rag.loaders.DocumentPart`).

        ``timeout_s`` bounds the time spent waiting for the child, summed over the parts: time
        the caller spends on a part is not the parser's. A page being recognised is waited for
        apart, up to ``ocr_page_timeout_s``; past it the page is handed on unrecognised (the
        document's warnings say which and why) and a new child goes on with the next pages.
        ``on_ocr(page, pages in the document)`` is called before a page is recognised.
        Abandoning the stream before its end stops the child, which would otherwise go on
        sending.
        """
        requests, answers = self._connections()
        finished = False
        waited = 0.0
        recognising: int | None = None
        resume: OcrResume | None = None
        with_text: set[int] = set()
        try:
            requests.send((str(path), password, self.ocr, resume))
            while not finished:
                started = time.monotonic()
                if not answers.poll(self._patience(waited, recognising)):
                    if recognising is None:
                        raise self._timed_out()
                    resume = self._past_page_limit(recognising, with_text, resume)
                    self._stop()
                    requests, answers = self._start()
                    requests.send((str(path), password, self.ocr, resume))
                    recognising = None
                    continue
                if recognising is None:
                    waited += time.monotonic() - started
                status, payload = answers.recv()
                if status == "ocr":
                    recognising, pages = payload
                    if on_ocr is not None:
                        on_ocr(recognising, pages)
                    continue
                recognising = None
                if status != "part":
                    finished = True
                    raise DocumentLoadError(str(payload))
                if isinstance(payload, ExtractedPage) and payload.text:
                    with_text.add(payload.number)
                finished = isinstance(payload, DocumentEnd)
                yield payload
        except (EOFError, BrokenPipeError, ConnectionResetError) as error:
            code = self._process.poll() if self._process else None
            raise DocumentLoadError(
                f"the parser crashed on this file (exit code {code})"
            ) from error
        finally:
            if not finished:
                self._stop()

    def _patience(self, waited: float, recognising: int | None) -> float:
        if recognising is not None:
            return self.ocr_page_timeout_s
        return max(0.0, self.timeout_s - waited)

    def _past_page_limit(
        self, page: int, with_text: set[int], resume: OcrResume | None
    ) -> OcrResume:
        """Where the next child starts: after ``page``, noted as not recognised in time."""
        note = (
            f"page {page}: OCR took longer than ocr_page_timeout_s, {self.ocr_page_timeout_s:g} s"
        )
        skipped = resume.skipped if resume else ()
        return OcrResume(page, frozenset(with_text), (*skipped, note))

    def _timed_out(self) -> DocumentLoadError:
        return DocumentLoadError(
            f"parsing took longer than {self.timeout_s:g} s; skipped (see parse_timeout_s)"
        )

    def _connections(self) -> tuple[Connection, Connection]:
        if self._requests is None or self._answers is None:
            return self._start()
        return self._requests, self._answers

    def _stop(self) -> None:
        for connection in (self._requests, self._answers):
            if connection is not None:
                connection.close()
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait(timeout=10)
        self._process = self._requests = self._answers = None

    def close(self) -> None:
        """End the child process."""
        self._stop()

    def __enter__(self) -> ParseWorker:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
