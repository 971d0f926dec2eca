"""Ingest that never dies part way: threads, the parse worker's imports, odd names, unreadable
folders and failures that deserve a retry. Real files, real MiniLM, real SQLite and Chroma."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.cli import main
from rag.chunker import chunk_document
from rag.embedder import Embedder
from rag.indexer import chunk_budget
from rag.library import Library
from rag.loaders import ExtractedDocument, ExtractedPage, load_document
from rag.types import IngestReport
from tests.conftest import REPO_ROOT
from tests.mounts import tmpfs
from tests.rag.test_crash_consistency import CHILD, start_ingest

ZH_NEWS = REPO_ROOT.parent / "shared" / "eval" / "zh-news"
SOAK = pytest.mark.skipif(not os.environ.get("SOAK"), reason="a long run: `make soak`")


def _by_name(report: IngestReport) -> dict[str, tuple[str, str | None]]:
    return {Path(r.path).name: (r.status, r.reason) for r in report.results}


def _notes(folder: Path, count: int, stem: str = "note") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{stem}{number}.md").write_text(
            f"# {stem} {number}\n\nThe tracing compiler records hot loop number {number}.\n"
        )
    return folder


def _parse_children(parent: int | None = None) -> list[int]:
    """Process ids of the parse workers started by ``parent`` (this process by default)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{parent or os.getpid()}\n" in status and b"parse_worker" in command:
            found.append(int(entry.name))
    return found


# 1. the tokenizer shared by the chunking and the embedding threads


def test_chunking_and_embedding_from_two_threads_share_no_tokenizer_state(
    embedder: Embedder,
) -> None:
    """What the ingest does (chunk one file while embedding another), made dense: on the shared
    tokenizer about one batch in four failed with "Unable to create tensor"."""
    texts = [path.read_text()[:40] for path in sorted(ZH_NEWS.glob("*.txt"))[:8]]
    batches = [[texts[n % 8][: 5 + n % 7], texts[(n + 3) % 8]] for n in range(16)]
    alone = [embedder.embed_passages(batch) for batch in batches]  # the model loads first, as
    expected = embedder.token_offsets(texts)  # in an ingest (Embedder.max_tokens)
    stop = threading.Event()
    wrong_offsets: list[int] = []

    def chunk_forever() -> None:
        while not stop.is_set():
            if embedder.token_offsets(texts) != expected:
                wrong_offsets.append(1)

    chunking = threading.Thread(target=chunk_forever)
    chunking.start()
    try:
        together = [embedder.embed_passages(batch) for batch in batches]
    finally:
        stop.set()
        chunking.join()
    assert not wrong_offsets
    for first, second in zip(alone, together, strict=True):
        assert first.shape == second.shape and abs(first - second).max() < 1e-4


def _ingest_chinese_news(library: Library, count: int) -> None:
    """Every file indexed, and the chunks recorded while embedding ran alongside are exactly the
    chunks of chunking each file alone (a corrupted tokenizer call changes them silently)."""
    files = sorted(ZH_NEWS.glob("*.txt"))[:count]
    report = library.ingest(files)
    assert report.count("indexed") == len(files) and report.count("failed") == 0
    budget, overlap = chunk_budget(library.config, library.embedder)
    offsets = library.embedder.token_offsets
    connection = library.manifest.connection
    for path in files[:: max(1, count // 10)]:
        expected = chunk_document(load_document(path), offsets, budget, overlap)
        stored = connection.execute(
            "SELECT c.text FROM chunks c JOIN documents d ON d.content_hash = c.content_hash "
            "WHERE d.path = ? ORDER BY c.seq",
            (str(path),),
        ).fetchall()
        assert [row[0] for row in stored] == [chunk.text for chunk in expected], path.name


def test_chinese_news_ingest_with_preparation_and_embedding_overlapped(
    make_library: Callable[..., Library],
) -> None:
    _ingest_chinese_news(make_library(batch_size=4), 24)


@pytest.mark.soak
@SOAK
def test_soak_four_hundred_chinese_news_files_in_one_ingest(
    make_library: Callable[..., Library],
) -> None:
    """The issue's run, shortened: the shared tokenizer stopped it at file 101 of 400."""
    _ingest_chinese_news(make_library(), 400)


# 8. memory bounded whatever the size of a text file


def test_a_long_document_is_tokenized_in_bounded_windows(embedder: Embedder) -> None:
    """The chunker's memory beyond its output is one window of sentences, not the document's
    token spans at once (several GB for a 100 MB text file)."""
    text = " ".join(f"Sentence number {n} of a long text file." for n in range(1500))
    document = ExtractedDocument((ExtractedPage(1, text),), title="long", extractor="text")
    calls: list[int] = []

    def recorded(texts: list[str]) -> list[list[tuple[int, int]]]:
        calls.append(len(texts))
        return embedder.token_offsets(texts)

    chunks = chunk_document(document, recorded, 64, 16)
    assert sum(calls) == 1500 and max(calls) <= 512
    assert chunks == chunk_document(document, embedder.token_offsets, 64, 16)


# 2. the parse worker must not import from the current directory


def test_ingest_from_a_folder_holding_its_own_rag_package(
    make_library: Callable[..., Library],
    tmp_path: Path,
    pdf_corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planted = tmp_path / "project"
    (planted / "rag").mkdir(parents=True)
    marker = tmp_path / "planted-code-ran"
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    (planted / "rag" / "__init__.py").write_text(payload)
    (planted / "rag" / "parse_worker.py").write_text(payload + "raise SystemExit(3)\n")
    (planted / "rag" / "loaders.py").write_text(payload)
    folder = _notes(tmp_path / "docs", 2)
    shutil.copy(pdf_corpus / "clean" / "minimal-document.pdf", folder / "minimal.pdf")
    monkeypatch.chdir(planted)
    report = make_library().ingest([folder])
    assert report.count("indexed") == 3, report.results
    assert not marker.exists()


# 5. a file name that is not valid UTF-8


def test_a_name_that_is_not_utf8_is_one_reported_file(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = _notes(tmp_path / "notes", 3)
    with open(os.fsencode(folder) + b"/caf\xe9.txt", "wb") as handle:
        handle.write(b"x\n")
    os.makedirs(os.fsencode(folder) + b"/d\xe9j\xe0")
    with open(os.fsencode(folder) + b"/d\xe9j\xe0/inside.md", "wb") as handle:
        handle.write(b"# Inside\n\nText.\n")
    library = make_library()
    for _ in range(2):  # the second ingest, of the same folder, used to abort too
        report = library.ingest([folder])
        results = _by_name(report)
        assert results["caf\\xe9.txt"] == (
            "failed",
            "the name is not valid UTF-8; rename it to index it",
        )
        assert results["d\\xe9j\\xe0"][0] == "failed"
        assert "inside.md" not in results
        json.dumps([result.path for result in report.results]).encode()  # printable, storable
    assert len(library.documents()) == 3
    assert not [t for t in threading.enumerate() if t.name == "rag-prepare"]
    assert _parse_children() == []


def test_a_failing_writer_leaves_no_preparing_thread_or_parse_process(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = _notes(tmp_path / "notes", 8)

    def broken_progress(progress: object) -> None:  # e.g. a UI callback with a bug
        if getattr(progress, "files_done", 0) >= 1:
            raise RuntimeError("progress display failed")

    with pytest.raises(RuntimeError, match="progress display failed"):
        make_library().ingest([folder], progress=broken_progress)
    assert not [t for t in threading.enumerate() if t.name == "rag-prepare"]
    assert _parse_children() == []


def test_the_parse_process_of_an_ingest_killed_with_9_does_not_live_on(tmp_path: Path) -> None:
    """Frozen mid-work, a parse worker whose ingest is killed must still go: the time limit
    died with the ingest, and an orphan would parse a pathological file for ever."""
    child = start_ingest(CHILD, str(tmp_path / "index"), str(ZH_NEWS))
    worker = None
    assert child.stdout is not None
    try:
        child.stdout.readline()  # the ingest has started
        worker = _serving_worker(child.pid)
        os.kill(worker, signal.SIGSTOP)
        child.send_signal(signal.SIGKILL)
        child.wait()
        for _ in range(100):
            if not _alive(worker):
                break
            time.sleep(0.1)
        assert not _alive(worker)
    finally:
        child.kill()
        child.wait()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)


def _serving_worker(parent: int) -> int:
    """The parse worker of ``parent`` once it waits for a request (it has set itself up)."""
    for _ in range(600):
        for worker in _parse_children(parent):
            if "pipe_read" in Path(f"/proc/{worker}/wchan").read_text():
                return worker
        time.sleep(0.1)
    raise AssertionError("no parse worker came to wait for a request")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# 6. only a file proven gone is removed

CHILD_INGEST = """
import json, sys
from pathlib import Path
from rag.config import LibraryConfig
from rag.library import Library

library = Library(Path(sys.argv[1]), LibraryConfig())
report = library.ingest([Path(sys.argv[2])])
print(json.dumps([[r.path, r.status, r.reason] for r in report.results]))
"""


def _without_root_privileges() -> None:
    """In the child, before exec: drop the capabilities that let root read any folder."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "cannot drop a capability")


def test_a_folder_that_cannot_be_read_keeps_its_documents(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = _notes(tmp_path / "notes", 2)
    _notes(folder / "locked", 2)
    index = tmp_path / "index"
    library = make_library(index)
    assert library.ingest([folder]).count("indexed") == 4
    library.close()
    (folder / "locked").chmod(0)
    try:
        child = subprocess.run(
            [sys.executable, "-c", CHILD_INGEST, str(index), str(folder)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=_without_root_privileges,
        )
    finally:
        (folder / "locked").chmod(0o755)
    assert child.returncode == 0, child.stderr[-2000:]
    results = {
        Path(path).name: (status, reason) for path, status, reason in json.loads(child.stdout)
    }
    assert results["locked"] == (
        "failed",
        "folder could not be read (Permission denied); documents indexed from it are kept",
    )
    assert "removed" not in {status for status, _ in results.values()}
    kept = [record.path for record in make_library(index).documents()]
    assert len(kept) == 4 and sum("/locked/" in path for path in kept) == 2


def test_a_folder_failing_with_an_io_error_keeps_its_documents(
    make_library: Callable[..., Library], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error (a network share or a drive going away), which no permission bit produces."""
    folder = _notes(tmp_path / "notes", 1)
    _notes(folder / "share", 2)
    library = make_library()
    library.ingest([folder])
    real_scandir = os.scandir

    def failing_scandir(path: str) -> object:
        if str(path).endswith("/share"):
            raise OSError(5, "Input/output error", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", failing_scandir)
    results = _by_name(library.ingest([folder]))
    assert results["share"][0] == "failed" and "Input/output error" in (results["share"][1] or "")
    assert len(library.documents()) == 3


def test_a_root_that_is_gone_keeps_its_documents(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    """A drive unmounted, a folder renamed: the path given no longer exists."""
    folder = _notes(tmp_path / "usb" / "papers", 2)
    library = make_library()
    library.ingest([folder])
    folder.parent.rename(tmp_path / "elsewhere")
    results = _by_name(library.ingest([folder]))
    assert results["papers"] == (
        "failed",
        "no such file or directory (a drive not mounted?); documents indexed from it are kept",
    )
    assert len(library.documents()) == 2


@pytest.fixture
def drive(tmp_path: Path) -> Iterator[Path]:
    """A real drive: a small tmpfs mounted on an empty folder (skips where mounting is not
    permitted), unmounted afterwards if the test has not done so."""
    mount_point = tmp_path / "library" / "usb"
    mount_point.mkdir(parents=True)
    with tmpfs(mount_point, "8m"):
        yield mount_point


EMPTIED = (
    "failed",
    "folder is empty (a drive not mounted?); 2 documents indexed from it are kept: if its files "
    "were deleted, run the ingest again with --remove-emptied",
)


def test_an_unmounted_drive_inside_a_folder_keeps_its_documents(
    make_library: Callable[..., Library], drive: Path
) -> None:
    """The mount point stays as an empty folder: that is not "every file deleted"."""
    folder = drive.parent
    _notes(folder, 1)
    _notes(drive, 2, "paper")
    library = make_library()
    assert library.ingest([folder]).count("indexed") == 3
    subprocess.run(["umount", str(drive)], check=True)
    assert drive.is_dir() and not any(drive.iterdir())
    results = _by_name(library.ingest([folder]))
    assert results["usb"] == EMPTIED
    assert "removed" not in {status for status, _ in results.values()}
    assert len(library.documents()) == 3
    assert _by_name(library.ingest([folder], remove_emptied=True))["paper0.md"][0] == "removed"
    assert [Path(record.path).name for record in library.documents()] == ["note0.md"]


def test_an_unmounted_drive_given_as_the_folder_keeps_its_documents(
    make_library: Callable[..., Library], drive: Path
) -> None:
    _notes(drive, 2)
    library = make_library()
    library.ingest([drive])
    subprocess.run(["umount", str(drive)], check=True)
    assert _by_name(library.ingest([drive]))["usb"] == EMPTIED
    assert len(library.documents()) == 2


def test_an_emptied_folder_is_held_only_while_completely_empty(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    """Without a mount: a folder whose files were all deleted keeps them until confirmed; one
    that still holds anything (a hidden file) was read, so its deleted files go; an empty folder
    that never held documents is not reported."""
    folder = _notes(tmp_path / "notes", 1)
    emptied = _notes(folder / "emptied", 2, "draft")
    touched = _notes(folder / "touched", 2, "paper")
    (folder / "never").mkdir()
    library = make_library()
    library.ingest([folder])
    for note in [*emptied.iterdir(), *touched.iterdir()]:
        note.unlink()
    (touched / ".DS_Store").write_bytes(b"\0")
    results = _by_name(library.ingest([folder]))
    assert results["emptied"] == EMPTIED
    assert "never" not in results
    assert sorted(name for name, (status, _) in results.items() if status == "removed") == [
        "paper0.md",
        "paper1.md",
    ]
    assert sum("/emptied/" in record.path for record in library.documents()) == 2
    assert sum("/touched/" in record.path for record in library.documents()) == 0
    results = _by_name(library.ingest([folder]))  # still empty: still held, not forgotten
    assert results["emptied"] == EMPTIED
    _by_name(library.ingest([folder], remove_emptied=True))
    assert [Path(record.path).name for record in library.documents()] == ["note0.md"]


# 9. failures are retried when the limits changed, or when asked


def _failed_at(library: Library, name: str) -> float:
    record = next(r for r in library.documents() if Path(r.path).name == name)
    assert record.status.startswith("failed: parsing took longer")
    return record.indexed_at


def test_a_timeout_is_retried_after_the_limit_is_raised(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = _notes(tmp_path / "notes", 1)
    index = tmp_path / "index"
    tight = make_library(index, parse_timeout_s=0.01)  # less than starting the parser takes
    assert _by_name(tight.ingest([folder]))["note0.md"][0] == "failed"
    first = _failed_at(tight, "note0.md")
    tight.ingest([folder])
    assert _failed_at(tight, "note0.md") == first  # same file, same limits: replayed
    tight.close()
    report = make_library(index, parse_timeout_s=60).ingest([folder])
    assert _by_name(report)["note0.md"] == ("indexed", None)


def test_ingest_retry_failed_parses_unchanged_failures_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _notes(tmp_path / "notes", 1)
    monkeypatch.setenv("MINICPM_ASSISTANT_LIBRARY__PARSE_TIMEOUT_S", "0.01")

    def failed_at() -> float:
        assert main(["docs", "list", "--json"]) == 0
        records = json.loads(capsys.readouterr().out)
        return float(next(r["indexed_at"] for r in records if r["status"].startswith("failed")))

    assert main(["ingest", str(folder), "--json"]) == 0
    capsys.readouterr()
    first = failed_at()
    assert main(["ingest", str(folder), "--json"]) == 0
    capsys.readouterr()
    assert failed_at() == first
    assert main(["ingest", str(folder), "--retry-failed", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["failed"] == 1 and failed_at() > first
