"""The app keeps the library's remembered folders indexed while it runs, on the real stack:
AssistantService with MiniLM embeddings and Chroma on disk, real files in a temporary folder,
the real write lock held by another process. Every wait is a bounded poll."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import DataTable, Label

from assistant.cli import main
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from tests.rag import scans
from tests.rag.test_watch import write_lock_held_elsewhere
from tests.tui.fakes import FakeService
from tests.tui.waiting import wait_until
from tui.app import FIRST_RUN_MARKER, MiniCPMApp, make_app
from tui.screens.library import LibraryScreen

pytestmark = pytest.mark.slow

UPDATE_S = 120.0
"""Bound on one folder update (the first loads the embedding model) on a loaded machine."""


def _note(path: Path, text: str) -> None:
    path.write_text(f"# {path.stem}\n\n{text}\n", encoding="utf-8")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    _note(folder / "first.md", "The tracing compiler records hot loops.")
    return folder


@pytest.fixture
def service(isolated_home: Path, folder: Path) -> Iterator[AssistantService]:
    """A home whose library remembers ``folder`` (ingested once), updates debounced briefly."""
    locations = Locations.default().ensure()
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    settings = Settings()
    settings.library.watch_debounce_s = 0.3
    service = AssistantService(settings, locations)
    assert service.ingest([folder]).count("indexed") == 1
    yield service
    service.close()


def _app(service: AssistantService) -> MiniCPMApp:
    return make_app(service.settings, service.locations, service=service)


def _names(service: AssistantService) -> set[str]:
    return {Path(record.path).name for record in service.documents()}


def _notices(app: MiniCPMApp, title: str) -> list[str]:
    return [n.message for n in app._notifications if n.title == title]


def _watch_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "folder-watch"]


async def test_the_watch_follows_the_collection_the_app_uses(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    async with fake_app.run_test() as pilot:
        await wait_until(pilot, lambda: fake_service.watched == ["default"], what="watching")
        fake_app.collection = "thesis"
        await wait_until(pilot, lambda: fake_service.watched == ["default", "thesis"], what="moved")


async def test_files_added_changed_moved_and_deleted_are_indexed_while_the_app_runs(
    service: AssistantService, folder: Path
) -> None:
    app = _app(service)
    seen: list[Message] = []
    async with app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
        await wait_until(pilot, lambda: app.folder_report is not None, UPDATE_S, "catch-up")

        _note(folder / "second.md", "Lanterns line the harbour wall.")
        await wait_until(pilot, lambda: "second.md" in _names(service), UPDATE_S, "added")

        def progress_named_it() -> bool:
            return any(
                isinstance(m, MiniCPMApp.FoldersProgressed)
                and Path(m.progress.current_file or "").name == "second.md"
                for m in seen
            )

        await wait_until(pilot, progress_named_it, UPDATE_S, "the update's progress")
        await wait_until(
            pilot,
            lambda: any("1 indexed" in n for n in _notices(app, "Watched folders updated")),
            UPDATE_S,
            "the update's notice",
        )

        (folder / "second.md").rename(folder / "renamed.md")
        await wait_until(
            pilot, lambda: _names(service) == {"first.md", "renamed.md"}, UPDATE_S, "moved"
        )
        _note(folder / "first.md", "The tracing compiler now also records side exits.")
        await wait_until(
            pilot,
            lambda: (
                app.folder_report is not None
                and any(r.status == "updated" for r in app.folder_report.results)
            ),
            UPDATE_S,
            "changed",
        )
        (folder / "renamed.md").unlink()
        await wait_until(pilot, lambda: _names(service) == {"first.md"}, UPDATE_S, "deleted")

        await app.switch_mode("library")
        (folder / "broken.pdf").write_bytes(b"%PDF-1.7 this is not a real PDF")
        await wait_until(
            pilot,
            lambda: any(
                "broken.pdf" in n for n in _notices(app, "A watched file could not be indexed")
            ),
            UPDATE_S,
            "a notice naming the failed file",
        )
        screen = app.screen
        assert isinstance(screen, LibraryScreen)
        await wait_until(
            pilot,
            lambda: (
                "Watched folders updated"
                in str(screen.query_one("#ingest-summary", Label).render())
            ),
            UPDATE_S,
            "the update in the ingest panel",
        )
        files = screen.query_one("#ingest-files", DataTable)
        rows = [[str(cell) for cell in files.get_row_at(i)] for i in range(files.row_count)]
        assert ["broken.pdf", "failed"] == rows[0][:2] and rows[0][4], rows
    service.stop_watching()  # as run_app's close() does after the app exits
    assert not _watch_threads(), "the watch stopped with the app"


async def test_a_scan_dropped_in_is_read_page_by_page_and_becomes_searchable(
    service: AssistantService, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """OCR's progress reaches the app page by page (seconds a page); the scan's passages are
    then found and cited by page."""
    font = scans.english_font(34)
    pages = [
        scans.text_page("The night clerk counted forty two barges of grain.", font, True),
        scans.text_page("Timber rafts waited at anchor in the bay until dawn.", font, True),
    ]
    scan = scans.write_pdf(tmp_path / "ledger.pdf", pages)
    app = _app(service)
    seen: list[Message] = []
    async with app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
        await wait_until(pilot, lambda: app.folder_report is not None, UPDATE_S, "catch-up")
        scan.rename(folder / "ledger.pdf")  # dropped in whole, as a finished download is
        await wait_until(  # the report comes after the update's progress messages
            pilot,
            lambda: (
                app.folder_report is not None
                and any(Path(r.path).name == "ledger.pdf" for r in app.folder_report.results)
            ),
            UPDATE_S,
            "the scan's update",
        )
    reading = [
        (m.progress.ocr_page, m.progress.file_pages)
        for m in seen
        if isinstance(m, MiniCPMApp.FoldersProgressed) and m.progress.ocr_page is not None
    ]
    assert list(dict.fromkeys(reading)) == [(1, 2), (2, 2)], "each page named as it is read"
    capsys.readouterr()
    assert main(["search", "timber rafts waited at anchor", "-k", "1", "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]
    assert Path(hit["file"]).name == "ledger.pdf" and hit["ocr"]
    assert hit["page"] in ("2", "1-2"), "cited by the page it is on (short pages share a passage)"


async def test_a_library_locked_by_another_process_is_updated_once_it_is_free(
    service: AssistantService, folder: Path
) -> None:
    _note(folder / "while-locked.md", "Ferries cross the strait at dawn.")
    with write_lock_held_elsewhere(service.locations.data_dir / "index") as release:
        app = _app(service)
        seen: list[Message] = []
        async with app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
            await wait_until(
                pilot, lambda: bool(_notices(app, "Library busy")), UPDATE_S, "the busy notice"
            )
            assert "another process" in _notices(app, "Library busy")[0]
            assert "while-locked.md" not in _names(service)
            release()
            await wait_until(
                pilot, lambda: "while-locked.md" in _names(service), UPDATE_S, "indexed after"
            )
            said = [m for m in seen if isinstance(m, MiniCPMApp.FoldersBusy)]
            assert len(said) == 1, "said once, retried quietly"
