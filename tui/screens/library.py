"""The library screen: add folders, watch ingestion live, list, remove and re-index documents.

Ingestion runs in a thread worker of this screen; screens of modes stay alive when the user
switches back to chat, so indexing continues while they ask questions.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar
from textual.worker import get_current_worker

from assistant.display import plain
from tui.commands import Command, bindings
from tui.screens.base import AppScreen
from tui.screens.dialogs import ConfirmDialog
from tui.widgets.path_input import PathInput

if TYPE_CHECKING:
    from assistant.service import FileResult, IngestProgress, IngestReport

FILE_STATUS_STYLE = {
    "indexed": "green",
    "updated": "green",
    "moved": "cyan",
    "unchanged": "dim",
    "removed": "yellow",
    "failed": "bold red",
    "skipped": "yellow",
}


def report_summary(report: IngestReport) -> str:
    """``4 indexed, 1 unchanged, 1 failed in 12 s`` (the statuses that occurred)."""
    counts = Counter(result.status for result in report.results)
    parts = [f"{count} {status}" for status, count in counts.most_common()]
    return f"{', '.join(parts) or 'nothing to do'} in {report.seconds:.0f} s"


def ocr_page(snapshot: IngestProgress) -> str:
    """`` (OCR page 3/40)`` while a scanned page is recognised: seconds a page, so a long scan
    shows it moving."""
    if snapshot.ocr_page is None:
        return ""
    return f" (OCR page {snapshot.ocr_page}/{snapshot.file_pages})"


class LibraryScreen(AppScreen):
    @dataclass
    class IngestProgressed(Message):
        progress: IngestProgress

    @dataclass
    class IngestFinished(Message):
        report: IngestReport

    ACTIONS = (
        Command(
            "add_folder",
            "Add a folder",
            "Index a folder of PDFs and notes",
            key="a",
            label="Add folder",
        ),
        Command(
            "remove_document",
            "Remove document",
            "Drop the selected document",
            key="delete",
            label="Remove",
        ),
        Command(
            "reindex_document",
            "Re-index document",
            "Index the selected one again",
            key="r",
            label="Re-index",
        ),
        Command(
            "reindex_all",
            "Re-index all",
            "Check every document for changes",
            key="R",
            label="Re-index all",
        ),
        Command(
            "stop_ingest",
            "Stop indexing",
            "Cancel the running ingest",
            key="s",
            label="Stop indexing",
        ),
        Command("app.switch_mode('chat')", key="escape", label="Chat", show=False),
    )
    BINDINGS = bindings(ACTIONS)

    def __init__(self) -> None:
        super().__init__()
        self.ingesting = False
        self._cancel = threading.Event()

    def compose(self) -> ComposeResult:
        with Horizontal(id="library-add"):
            yield PathInput(placeholder="Folder or file to add, e.g. ~/papers", id="library-path")
            yield Button("Add & index", variant="primary", id="library-add-button")
        yield Label("Documents", classes="panel-title")
        yield DataTable(id="documents", cursor_type="row", zebra_stripes=True)
        with Vertical(id="ingest-panel"):
            yield Label("No indexing running.", id="ingest-summary", markup=False)
            yield ProgressBar(id="ingest-progress", show_eta=False)
            yield DataTable(id="ingest-files", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        documents = self.query_one("#documents", DataTable)
        documents.add_columns("Document", "Collection", "Pages", "Chunks", "Status", "Indexed")
        files = self.query_one("#ingest-files", DataTable)
        files.add_columns("File", "Result", "Pages", "Chunks", "Reason")
        self.query_one("#ingest-progress", ProgressBar).display = False
        self.watch(self.app, "folder_progress", self._folders_progressed, init=False)
        self.watch(self.app, "folder_report", self._folders_updated, init=False)
        if self.refresh_documents():
            documents.focus()
        else:
            self.query_one("#library-path", PathInput).focus()

    def on_screen_resume(self) -> None:
        self.refresh_documents()

    # Documents -------------------------------------------------------------------------------

    def refresh_documents(self) -> int:
        """Fill the documents table; returns how many documents there are."""
        table = self.query_one("#documents", DataTable)
        ok, records = self.attempt("read the library", self.service.documents)
        if not ok or records is None:
            return 0
        table.clear()
        for record in sorted(records, key=lambda r: r.path):
            table.add_row(
                plain(Path(record.path).name, one_line=True),
                plain(record.collection, one_line=True),
                str(record.pages),
                str(record.chunks),
                record.status,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(record.indexed_at)),
                key=f"{record.collection}\0{record.path}",
            )
        if not records:
            table.add_row("(empty: add a folder above)", "", "", "", "", "")
        return len(records)

    def _selected_document(self) -> tuple[str, str] | None:
        table = self.query_one("#documents", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if not key or "\0" not in key:
            return None
        collection, path = key.split("\0", 1)
        return collection, path

    def action_add_folder(self) -> None:
        self.query_one("#library-path", PathInput).focus()

    def action_remove_document(self) -> None:
        selected = self._selected_document()
        if selected is None:
            return
        collection, path = selected

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            ok, removed = self.attempt(
                "remove the document", lambda: self.service.remove_document(path, collection)
            )
            if ok:
                self.notify(f"Removed {Path(path).name} ({removed} passages).")
            self.refresh_documents()

        self.app.push_screen(
            ConfirmDialog(f"Remove {Path(path).name} from the library?", "Remove"), confirmed
        )

    def action_reindex_document(self) -> None:
        selected = self._selected_document()
        if selected is not None:
            self.start_ingest([Path(selected[1])], selected[0])

    def action_reindex_all(self) -> None:
        collection = self.assistant_app.collection
        ok, records = self.attempt("read the library", lambda: self.service.documents(collection))
        if records:
            self.start_ingest([Path(r.path) for r in records], collection)
        elif ok:
            self.notify(f"The collection {collection!r} has no documents yet; add a folder (a).")

    # Ingesting -------------------------------------------------------------------------------

    @on(Input.Submitted, "#library-path")
    @on(Button.Pressed, "#library-add-button")
    def _add(self) -> None:
        field = self.query_one("#library-path", PathInput)
        path = field.path
        if path is None:
            self.notify("Type the path of a folder (or a file) to add.", severity="warning")
            return
        if not path.exists():
            self.notify(
                f"{path} does not exist. Check the path (→ completes names).",
                title="No such folder",
                severity="error",
            )
            return
        if self.start_ingest([path.resolve()], self.assistant_app.collection):
            field.value = ""

    def start_ingest(self, paths: Sequence[Path], collection: str) -> bool:
        """Start indexing unless an ingest already runs; returns whether it started."""
        if self.ingesting:
            self.notify("Indexing is already running; wait for it or stop it (s).")
            return False
        self.ingesting = True
        self._cancel = threading.Event()
        self.query_one("#ingest-files", DataTable).clear()
        bar = self.query_one("#ingest-progress", ProgressBar)
        bar.display = True
        bar.update(total=None, progress=0)
        self.query_one("#ingest-summary", Label).update(f"Scanning {len(paths)} path(s)…")
        self.assistant_app.ingest_activity = "indexing…"
        self.ingest(list(paths), collection, self._cancel)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="ingest")
    def ingest(self, paths: list[Path], collection: str, cancel: threading.Event) -> None:
        """Index in a thread; progress and the report come back as messages, a failure in
        ``worker_failed``."""
        worker = get_current_worker()

        def progress(snapshot: IngestProgress) -> None:
            if worker.is_cancelled:
                cancel.set()
            self.post_message(self.IngestProgressed(snapshot))

        report = self.service.ingest(paths, collection, progress=progress, cancel=cancel)
        self.post_message(self.IngestFinished(report))

    def action_stop_ingest(self) -> None:
        if self.ingesting:
            self._cancel.set()
            self.query_one("#ingest-summary", Label).update("Stopping after the current file…")

    @on(IngestProgressed)
    def _progress(self, event: IngestProgressed) -> None:
        snapshot = event.progress
        self._show_progress(snapshot)
        self.assistant_app.ingest_activity = (
            f"indexing {snapshot.files_done}/{snapshot.files_total}{ocr_page(snapshot)}"
        )
        if snapshot.last_result is not None:
            self._show_result(snapshot.last_result)

    def _show_progress(self, snapshot: IngestProgress, doing: str = "") -> None:
        bar = self.query_one("#ingest-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(snapshot.files_total, 1), progress=snapshot.files_done)
        eta = f", about {snapshot.eta_s:.0f} s left" if snapshot.eta_s else ""
        current = f" — {Path(snapshot.current_file).name}" if snapshot.current_file else ""
        current += ocr_page(snapshot)
        self.query_one("#ingest-summary", Label).update(
            plain(
                f"{doing}{snapshot.files_done}/{snapshot.files_total} files, "
                f"{snapshot.pages_done} pages, {snapshot.chunks_done} passages "
                f"({snapshot.chunks_per_s:.1f}/s{eta}){current}",
                one_line=True,
            )
        )

    def _folders_progressed(self, snapshot: IngestProgress | None) -> None:
        """An update of the watched folders (the app's watch) shows here unless this screen's
        own ingest does; one with nothing to do shows nothing."""
        if self.ingesting or snapshot is None or snapshot.files_done >= snapshot.files_total:
            return
        self._show_progress(snapshot, "Updating the watched folders: ")

    def _folders_updated(self, report: IngestReport | None) -> None:
        if report is None or self.ingesting:
            return
        changed = [result for result in report.results if result.status != "unchanged"]
        if not changed:
            self.query_one("#ingest-progress", ProgressBar).display = False
            return
        self.query_one("#ingest-summary", Label).update(
            f"Watched folders updated: {report_summary(report)}."
        )
        self.query_one("#ingest-progress", ProgressBar).display = False
        files = self.query_one("#ingest-files", DataTable)
        files.clear()
        for result in changed:
            self._show_result(result)
        self.refresh_documents()

    def _show_result(self, result: FileResult) -> None:
        style = FILE_STATUS_STYLE.get(result.status, "")
        self.query_one("#ingest-files", DataTable).add_row(
            plain(Path(result.path).name, one_line=True),
            Text(result.status, style=style),
            str(result.pages),
            str(result.chunks),
            plain(result.reason or "", one_line=True),
        )

    @on(IngestFinished)
    def _finished(self, event: IngestFinished) -> None:
        report = event.report
        summary = report_summary(report)
        self.query_one("#ingest-summary", Label).update(f"Done: {summary}.")
        bar = self.query_one("#ingest-progress", ProgressBar)
        bar.update(total=max(len(report.results), 1), progress=max(len(report.results), 1))
        # The report is the whole story: progress does not carry every file (skipped ones).
        self.query_one("#ingest-files", DataTable).clear()
        for result in report.results:
            self._show_result(result)
        failed = report.count("failed")
        advice = " Failed files and their reasons are listed in the Library (F3)." if failed else ""
        self.notify(
            f"{summary}.{advice}",
            title="Indexing finished",
            severity="warning" if failed else "information",
        )
        self._ingest_over()
        self.refresh_documents()

    async def worker_failed(self, group: str, title: str, message: str) -> None:
        """The ingest is the screen's only worker."""
        self.query_one("#ingest-summary", Label).update(plain(f"Failed: {message}"))
        self.notify(message, title=title, severity="error", timeout=10)
        self._ingest_over()

    def _ingest_over(self) -> None:
        self.ingesting = False
        self.assistant_app.ingest_activity = ""
