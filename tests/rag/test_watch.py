"""Watched folders on real disk: the index follows files added, changed, moved and deleted."""

from __future__ import annotations

import contextlib
import json
import os
import queue
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
from rag.library import Library
from rag.types import IngestReport
from rag.watch import FolderWatcher
from tests.conftest import REPO_ROOT
from tests.rag.test_crash_consistency import _assert_consistent
from tests.rag.test_markup import _epub, _html, _word

DEADLINE_S = 120.0
"""How long the index may take to follow a change (a bound for a hung watcher, not a timing)."""


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the index did not follow within {DEADLINE_S:g}s: {what}")
        time.sleep(0.1)


def _names(library: Library) -> set[str]:
    return {Path(record.path).name for record in library.documents("default")}


_HOLD_WRITE_LOCK = """
import sys
from pathlib import Path
from rag.lock import WriteLock

with WriteLock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def write_lock_held_elsewhere(index_dir: Path) -> Iterator[Callable[[], None]]:
    """Another process holds the library's write lock (as a CLI ingest would) until the
    yielded function releases it, or the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_WRITE_LOCK, str(index_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )

    def release() -> None:
        assert holder.stdin is not None
        holder.stdin.close()
        assert holder.wait(timeout=DEADLINE_S) == 0

    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield release
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def _note(path: Path, text: str) -> None:
    path.write_text(f"# {path.stem}\n\n{text}\n", encoding="utf-8")


def _ingested(make_library: Callable[..., Library], note: Path, text: str) -> Library:
    """A library that has ingested (so remembers) a new folder holding one note."""
    note.parent.mkdir()
    _note(note, text)
    library = make_library()
    library.ingest([note.parent])
    return library


@pytest.fixture
def watched(
    make_library: Callable[..., Library], tmp_path: Path
) -> Iterator[tuple[Library, Path, list[IngestReport]]]:
    """A folder ingested once (so remembered) and watched on a thread until the test ends."""
    folder = tmp_path / "notes"
    library = _ingested(
        make_library, folder / "first.md", "The tracing compiler records hot loops."
    )
    reports: list[IngestReport] = []
    watcher = FolderWatcher(library, debounce_s=0.3, rescan_s=600, on_report=reports.append)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    _eventually(lambda: bool(reports), "the catch-up update at start")
    yield library, folder, reports
    watcher.stop()
    thread.join(timeout=DEADLINE_S)
    assert not thread.is_alive(), "the watcher did not stop"


def test_the_index_follows_added_changed_moved_and_deleted_files(
    watched: tuple[Library, Path, list[IngestReport]],
) -> None:
    library, folder, reports = watched
    _note(folder / "second.md", "Lighthouse keepers log the weather every evening.")
    _eventually(lambda: "second.md" in _names(library), "a new file")
    hits = library.search("lighthouse keepers weather log", k=1)
    assert Path(hits[0].file).name == "second.md"

    _note(folder / "second.md", "Beekeepers count the hives after the winter frost.")
    _eventually(
        lambda: "hives" in library.search("beekeepers hives winter", k=1)[0].text,
        "a changed file",
    )
    assert "Lighthouse" not in " ".join(hit.text for hit in library.search("lighthouse", k=5))

    (folder / "sub").mkdir()
    os.rename(folder / "second.md", folder / "sub" / "renamed.md")
    _eventually(lambda: _names(library) == {"first.md", "renamed.md"}, "a moved file")
    statuses = {result.status for report in reports for result in report.results}
    assert "moved" in statuses, "a moved file must be re-pointed, not embedded again"

    shutil.rmtree(folder / "sub")
    _eventually(lambda: _names(library) == {"first.md"}, "a deleted folder")

    # The last file deleted leaves the folder empty, which is also what the mount point of a
    # drive not mounted looks like: as in a manual ingest, its documents are kept, and said so.
    (folder / "first.md").unlink()
    _eventually(
        lambda: any("folder is empty" in (r.reason or "") for r in reports[-1].results),
        "an emptied folder",
    )
    assert _names(library) == {"first.md"}


def test_word_html_and_epub_files_dropped_in_become_searchable(
    watched: tuple[Library, Path, list[IngestReport]],
) -> None:
    library, folder, _ = watched
    _word(folder / "orchard.docx")
    _html(folder / "harbour.html")
    _epub(folder / "voyages.epub")
    wanted = {"first.md", "orchard.docx", "harbour.html", "voyages.epub"}
    _eventually(lambda: _names(library) == wanted, "three new documents")
    for query, name in (
        ("prune apple trees late winter", "orchard.docx"),
        ("high tide boats ebb", "harbour.html"),
        ("storm broke the mainmast", "voyages.epub"),
    ):
        assert Path(library.search(query, k=1)[0].file).name == name


def test_hidden_and_unsupported_files_start_no_update(
    watched: tuple[Library, Path, list[IngestReport]],
) -> None:
    """Editor swap files and the like are not documents: no ingest runs for them."""
    library, folder, reports = watched
    before = len(reports)
    (folder / ".first.md.swp").write_bytes(b"swap")
    (folder / "picture.bmp").write_bytes(b"BM")
    _note(folder / "marker.md", "Written last, so its update comes after the others' events.")
    _eventually(lambda: "marker.md" in _names(library), "the marker file")
    assert len(reports) == before + 1
    assert [result.status for result in reports[-1].results].count("indexed") == 1


def test_the_rescan_alone_keeps_a_folder_current(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    """Without file events (a folder that cannot be watched), the periodic rescan still
    follows the folder."""
    folder = tmp_path / "drive"
    library = _ingested(make_library, folder / "a.md", "Harbour tides rise twice a day.")
    watcher = FolderWatcher(library, debounce_s=0.1, rescan_s=0.3, events=False)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        _note(folder / "b.md", "Glaciers carve valleys over millennia.")
        _eventually(lambda: _names(library) == {"a.md", "b.md"}, "a file added, by rescan")
    finally:
        watcher.stop()
        thread.join(timeout=DEADLINE_S)


@contextlib.contextmanager
def _inotify_used_up() -> Iterator[None]:
    """Take every inotify instance this user may open, as a desktop full of watching
    programs does, and give them back after."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    taken: list[int] = []
    try:
        while (fd := libc.inotify_init()) >= 0:
            taken.append(fd)
        yield
    finally:
        for fd in taken:
            os.close(fd)


def _inotify_instances_allowed() -> int:
    try:
        return int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    except (OSError, ValueError):
        return 0


@pytest.mark.skipif(
    not 0 < _inotify_instances_allowed() <= 1024,
    reason="no Linux inotify limit small enough to use up without running out of files too",
)
def test_no_file_events_to_be_had_leaves_the_rescan(
    make_library: Callable[..., Library], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With the system's inotify instances used up, the watch still starts, says why it only
    rescans, and follows the folder by rescans."""
    folder = tmp_path / "inbox"
    library = _ingested(make_library, folder / "a.md", "Harbour tides rise twice a day.")
    failures: list[BaseException] = []
    watcher = FolderWatcher(library, debounce_s=0.1, rescan_s=0.3)

    def run() -> None:
        try:
            watcher.run()
        except BaseException as error:  # what the watch died of, for the assertion below
            failures.append(error)

    with _inotify_used_up():
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            _note(folder / "b.md", "Glaciers carve valleys over millennia.")
            _eventually(
                lambda: bool(failures) or _names(library) == {"a.md", "b.md"},
                "a file added, by rescan",
            )
        finally:
            watcher.stop()
            thread.join(timeout=DEADLINE_S)
    assert not failures, failures
    assert "cannot watch for file changes (inotify instance limit reached)" in caplog.text


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_a_library_locked_elsewhere_is_said_once_and_updated_when_free(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = tmp_path / "notes"
    library = _ingested(
        make_library, folder / "first.md", "The tracing compiler records hot loops."
    )
    busy: list[str] = []
    reports: list[IngestReport] = []
    watcher = FolderWatcher(library, debounce_s=0.1, on_report=reports.append, on_busy=busy.append)
    with write_lock_held_elsewhere(library.index_dir) as release:
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        try:
            _eventually(lambda: bool(busy), "the busy library reported")
            _note(folder / "second.md", "Lanterns line the harbour wall.")
            assert not reports, "nothing was updated while the library was locked"
            release()
            _eventually(lambda: _names(library) == {"first.md", "second.md"}, "updated when free")
        finally:
            watcher.stop()
            thread.join(timeout=DEADLINE_S)
    assert "another process" in busy[0] and len(busy) == 1


def test_folders_are_remembered_and_removing_one_removes_its_documents(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder, other = tmp_path / "notes", tmp_path / "loose.md"
    folder.mkdir()
    _note(folder / "a.md", "Orchards bloom in April.")
    _note(folder / "b.md", "Vineyards harvest in September.")
    _note(other, "A single file given by itself.")
    assert _run(capsys, "ingest", str(folder), str(other), "--json")[0] == 0

    code, out = _run(capsys, "docs", "folders", "--json")
    listed = json.loads(out)
    assert code == 0 and [item["path"] for item in listed] == [str(folder.resolve())]
    assert listed[0]["collection"] == "default"

    code, out = _run(capsys, "docs", "rm", str(folder), "--json")
    assert code == 0 and json.loads(out)["documents_removed"] == 2
    code, out = _run(capsys, "docs", "list", "--json")
    assert [Path(item["path"]).name for item in json.loads(out)] == ["loose.md"]
    assert json.loads(_run(capsys, "docs", "folders", "--json")[1]) == []


def test_watch_without_a_folder_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--watch"]) != 0
    assert "no folders to watch" in capsys.readouterr().err


class _Lines:
    """A child's stdout read on a thread, so that every wait for a line has a deadline."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        assert child.stdout is not None
        stream = child.stdout

        def read() -> None:
            for line in stream:
                self._lines.put(line)

        threading.Thread(target=read, daemon=True).start()

    def next(self) -> str:
        try:
            return self._lines.get(timeout=DEADLINE_S)
        except queue.Empty:
            pytest.fail(f"no output from the watching process within {DEADLINE_S:g}s")


def test_ingest_watch_from_the_command_line(tmp_path: Path) -> None:
    """The real CLI: a file dropped into a watched folder is indexed and reported; Ctrl-C
    ends the watch cleanly."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    _note(folder / "a.md", "Ferries cross the strait at dawn.")
    # Started the way a terminal starts it: a suite run in the background (`make test &`)
    # ignores SIGINT, and a child inherits that, so Ctrl-C would never reach it.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "assistant", "ingest", str(folder), "--watch", "--json"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "MINICPM_ASSISTANT_LIBRARY__WATCH_DEBOUNCE_S": "0.3"},
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        lines = _Lines(child)
        assert json.loads(lines.next())["counts"]["indexed"] == 1  # the ingest asked for
        assert json.loads(lines.next())["counts"]["unchanged"] == 1  # the watch's catch-up
        _note(folder / "b.md", "Lanterns line the harbour wall.")
        report = json.loads(lines.next())
        indexed = [item["path"] for item in report["files"] if item["status"] == "indexed"]
        assert [Path(path).name for path in indexed] == ["b.md"]
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=DEADLINE_S) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


WATCH_CHILD = """
import sys
from pathlib import Path
from rag.config import LibraryConfig
from rag.library import Library
from rag.watch import FolderWatcher

library = Library(Path(sys.argv[1]), LibraryConfig(batch_size=8, chunk_tokens=32))
def progress(update):
    print("progress", update.chunks_done, flush=True)
def report(update):
    print("report", flush=True)
FolderWatcher(library, debounce_s=0.3, on_report=report, progress=progress).run()
"""


def test_kill_9_during_a_watched_update_then_restart(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    """Killed between two batches of a file the watch found, the restarted watch leaves the
    index as a manual ingest would: the file stored once, nothing orphaned."""
    folder = tmp_path / "docs"
    folder.mkdir()
    _note(folder / "notes.md", "Trace trees and nested loops.")
    index = tmp_path / "index"
    seed = make_library(index)
    seed.ingest([folder])
    seed.close()

    def start() -> tuple[subprocess.Popen[str], _Lines]:
        child = subprocess.Popen(
            [sys.executable, "-c", WATCH_CHILD, str(index)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        lines = _Lines(child)
        while not lines.next().startswith("report"):  # the catch-up update
            pass
        return child, lines

    child, lines = start()
    paragraphs = [
        f"Entry {n}: the keeper of lighthouse {n} logged wind and tide." for n in range(90)
    ]
    (folder / "log.md").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    while True:
        line = lines.next()
        assert not line.startswith("report"), "the update ended before the kill"
        if line.startswith("progress") and int(line.split()[1]) > 0:
            child.send_signal(signal.SIGKILL)
            break
    child.wait()
    inspector = make_library(index, batch_size=8)
    _assert_consistent(inspector)
    assert _names(inspector) == {"notes.md"}, "a half-stored file must not be recorded"
    inspector.close()

    child, lines = start()  # the restart's catch-up finishes the interrupted update
    child.terminate()
    child.wait(timeout=DEADLINE_S)
    library = make_library(index, batch_size=8)
    _assert_consistent(library)
    assert library.manifest.pending() == []
    assert _names(library) == {"notes.md", "log.md"}
    total = library.manifest.connection.execute("SELECT SUM(chunks) FROM contents").fetchone()[0]
    assert library.store.count("default") == total  # no duplicates, no orphans
