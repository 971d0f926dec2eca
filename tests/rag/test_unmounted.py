"""A drive that is not mounted, or not the drive it was, keeps its documents (issue 12, item 6).

Every drive here is real: a small tmpfs mounted by the test on a folder of its own, so the
mount point's device number (``st_dev``) really changes, as for a USB stick or a network share
(the tests skip where mounting is not permitted). The empty mount point is covered by
``test_ingest_reliability.py``; these are the cases an empty-folder rule cannot see: the
automounter removing the mount point, a mount point with files of its own on the parent drive,
another drive mounted in its place. On the embedded store and on a real Chroma server (the
shared library keeps this machine's bookkeeping in its local manifest).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from assistant.cli import main
from rag.config import LibraryConfig, StoreConfig
from rag.embedder import Embedder
from rag.library import Library
from rag.manifest import MIGRATIONS
from rag.types import IngestReport
from rag.watch import FolderWatcher
from tests.chroma_server import ChromaServer
from tests.mounts import tmpfs

Make = Callable[[], Library]
DEADLINE_S = 120.0
"""How long a watcher may take to follow an unmount (a bound for a hung watcher, not a timing)."""


def other_drive(kept: int) -> tuple[str, str]:
    documents = (
        "1 document indexed from it is" if kept == 1 else f"{kept} documents indexed from it are"
    )
    return (
        "failed",
        f"folder could not be read (not the drive it was: unmounted?); {documents} kept: if its "
        "files were deleted, run the ingest again with --remove-emptied",
    )


def _by_name(report: IngestReport) -> dict[str, tuple[str, str | None]]:
    return {Path(r.path).name: (r.status, r.reason) for r in report.results}


def _notes(folder: Path, count: int, stem: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"{stem}{number}.md").write_text(
            f"# {stem} {number}\n\nThe lighthouse keeper logged storm {stem} {number} in the "
            "harbour book.\n"
        )
    return folder


def _names(library: Library) -> list[str]:
    return sorted(Path(record.path).name for record in library.documents())


def _unmount(mount_point: Path) -> None:
    subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture(params=["embedded", "server"])
def make_library(
    request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder
) -> Iterator[Make]:
    """Libraries on the embedded store, or on a fresh database of the session's Chroma server."""
    store: StoreConfig | None = None
    if request.param == "server":
        server: ChromaServer = request.getfixturevalue("chroma_server")
        store = server.new_database()
    made: list[Library] = []

    def make() -> Library:
        library = Library(tmp_path / "index", LibraryConfig(), server=store)
        library.use_embedder(embedder)
        made.append(library)
        return library

    yield make
    for library in made:
        library.close()


@pytest.fixture
def drives(tmp_path: Path) -> Iterator[Callable[[Path], Path]]:
    """``mount(folder)``: a fresh 8 MB tmpfs on ``folder`` (made if needed); all unmounted at
    the end if the test has not done so."""
    with ExitStack() as stack:

        def mount(folder: Path) -> Path:
            folder.mkdir(parents=True, exist_ok=True)
            return stack.enter_context(tmpfs(folder, "8m"))

        yield mount


def test_a_drive_whose_mount_point_was_removed_keeps_its_documents(
    make_library: Make, drives: Callable[[Path], Path], tmp_path: Path
) -> None:
    """The automounter (udisks: ``/media/$USER/LABEL``) removes the mount point on unmount, so
    the folder ingested reads fine and the drive's folder is simply not there."""
    media = _notes(tmp_path / "media", 1, "note")
    usb = _notes(drives(media / "usb"), 2, "paper")
    library = make_library()
    assert library.ingest([media]).count("indexed") == 3
    _unmount(usb)
    usb.rmdir()

    results = _by_name(library.ingest([media]))

    assert results["usb"] == other_drive(2)
    assert "removed" not in {status for status, _ in results.values()}
    assert _names(library) == ["note0.md", "paper0.md", "paper1.md"]
    assert Path(library.search("storm paper 1", k=1)[0].file).name == "paper1.md"
    assert _by_name(library.ingest([media]))["usb"] == other_drive(2)  # still held
    removed = _by_name(library.ingest([media], remove_emptied=True))
    assert removed["paper0.md"][0] == removed["paper1.md"][0] == "removed"
    assert _names(library) == ["note0.md"]
    assert "usb" not in _by_name(library.ingest([media]))  # confirmed: nothing left to hold


def test_a_mount_point_with_files_of_its_own_keeps_the_drives_documents(
    make_library: Make, drives: Callable[[Path], Path], tmp_path: Path
) -> None:
    """Files written into the mount point while the drive was away are hidden by the mount and
    show again when it goes: the folder reads, and is not empty, but it is another drive."""
    usb = _notes(tmp_path / "usb", 1, "underneath")
    drives(usb)
    _notes(usb, 2, "paper")
    library = make_library()
    assert _by_name(library.ingest([usb])) == {
        "paper0.md": ("indexed", None),
        "paper1.md": ("indexed", None),
    }
    _unmount(usb)

    results = _by_name(library.ingest([usb]))

    assert results["usb"] == other_drive(2)
    assert results["underneath0.md"] == ("indexed", None)  # what is there now is indexed
    assert _names(library) == ["paper0.md", "paper1.md", "underneath0.md"]


def test_another_drive_in_the_same_place_does_not_remove_the_first_ones_documents(
    make_library: Make, drives: Callable[[Path], Path], tmp_path: Path
) -> None:
    """The second drive is mounted over the first, which so keeps its device number and the
    second has another (the kernel gives a freed number out again at once: two sticks in turn
    on one port are one device to ``st_dev``, a limit of this check)."""
    usb = tmp_path / "usb"
    _notes(drives(usb), 2, "paper")
    library = make_library()
    library.ingest([usb])
    _notes(drives(usb), 1, "other")

    results = _by_name(library.ingest([usb]))

    assert results["usb"] == other_drive(2)
    assert results["other0.md"] == ("indexed", None)
    assert _names(library) == ["other0.md", "paper0.md", "paper1.md"]
    confirmed = _by_name(library.ingest([usb], remove_emptied=True))
    assert confirmed["paper0.md"][0] == confirmed["paper1.md"][0] == "removed"
    assert _by_name(library.ingest([usb])) == {"other0.md": ("unchanged", None)}


def test_the_same_drive_under_a_new_device_number_is_itself(
    make_library: Make, drives: Callable[[Path], Path], tmp_path: Path
) -> None:
    """A network or FUSE drive mounted again may get a new device number. A tmpfs forgets its
    files when unmounted, so a second one, mounted over the first (to be sure of another
    number), is given the same files with the same sizes and times (``copy2``): one of them was
    deleted while the drive was away, and that one goes."""
    usb = tmp_path / "usb"
    _notes(drives(usb), 3, "paper")
    library = make_library()
    library.ingest([usb])
    saved = shutil.copytree(usb, tmp_path / "saved", copy_function=shutil.copy2)
    first = usb.stat().st_dev
    drives(usb)
    assert usb.stat().st_dev != first
    for name in ("paper0.md", "paper1.md"):
        shutil.copy2(saved / name, usb / name)

    results = _by_name(library.ingest([usb]))

    assert results == {
        "paper0.md": ("unchanged", None),
        "paper1.md": ("unchanged", None),
        "paper2.md": ("removed", None),
    }


def test_an_index_from_before_drive_records_records_them_at_its_next_ingest(
    make_library: Make, drives: Callable[[Path], Path], tmp_path: Path
) -> None:
    """The previous release's manifest is this one without the drives table: made here by
    dropping it and setting the schema version back, then opened (migrated) again."""
    media = _notes(tmp_path / "media", 1, "note")
    usb = _notes(drives(media / "usb"), 2, "paper")
    library = make_library()
    library.ingest([media])
    library.close()
    manifest = tmp_path / "index" / "manifest.sqlite3"
    with sqlite3.connect(manifest) as old:
        old.execute("DROP TABLE drives")
        old.execute("DROP TABLE migrations")  # that release counted its steps instead
        old.execute(f"PRAGMA user_version = {len(MIGRATIONS) - 1}")

    library = make_library()
    assert library.manifest.drives_under("default", ["/"]) == {}
    assert library.ingest([media]).count("unchanged") == 3
    _unmount(usb)
    usb.rmdir()

    assert _by_name(library.ingest([media]))["usb"] == other_drive(2)
    assert len(library.documents()) == 3


def test_the_command_line_reports_the_folder_and_removes_only_when_confirmed(
    drives: Callable[[Path], Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _notes(tmp_path / "media", 1, "note")
    usb = _notes(drives(media / "usb"), 1, "paper")
    assert main(["ingest", str(media), "--json"]) == 0
    capsys.readouterr()
    _unmount(usb)
    usb.rmdir()

    assert main(["ingest", str(media), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["removed"] == 0
    assert {(f["path"], f["status"], f["reason"]) for f in report["files"]} >= {
        (str(usb), *other_drive(1))
    }
    assert main(["ingest", str(media), "--remove-emptied", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["removed"] == 1


def test_a_watched_folder_keeps_the_documents_of_a_drive_taken_away(
    make_library: Make, drives: Callable[[Path], Path], tmp_path: Path
) -> None:
    """``ingest --watch``: the unmount and the mount point's removal are file events; the update
    they start holds the drive's documents as a manual ingest does."""
    media = _notes(tmp_path / "media", 1, "note")
    usb = _notes(drives(media / "usb"), 2, "paper")
    library = make_library()
    library.ingest([media])
    reports: list[IngestReport] = []
    watcher = FolderWatcher(library, debounce_s=0.3, rescan_s=600, on_report=reports.append)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        _eventually(lambda: bool(reports), "the catch-up update at start")
        _unmount(usb)
        usb.rmdir()
        _eventually(
            lambda: _by_name(reports[-1]).get("usb") == other_drive(2), "the drive taken away"
        )
        assert _names(library) == ["note0.md", "paper0.md", "paper1.md"]
    finally:
        watcher.stop()
        thread.join(timeout=DEADLINE_S)
    assert not thread.is_alive(), "the watcher did not stop"


def _eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the watcher did not follow within {DEADLINE_S:g}s: {what}")
        time.sleep(0.1)
