"""The ingest progress's time left: measured on work done after the start-up, never on files
started, so the first estimate is not dominated by the embedding model loading."""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from assistant.cli.library_cmd import _ingest_with_bar, reading_now, time_left
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from rag.indexer import _Meter
from rag.library import Library
from rag.types import IngestProgress
from tests.rag import scans


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_time_left_leaves_out_the_start_up_of_the_first_file() -> None:
    clock = Clock()
    meter = _Meter(files_total=4, bytes_total=1000, clock=clock)
    assert meter.seconds_left() is None, "nothing done yet"
    clock.now = 50.0  # a 100-byte file, and the start-up: the model loading
    meter.file_finished("note.md", 100)
    assert meter.seconds_left() is None, "no rate without a second file"
    clock.now = 51.0  # then 300 bytes a second
    meter.file_finished("note.md", 300)
    # 600 bytes at 300 B/s; counting the start-up would say 51 s * 600 / 400 = 76.5 s
    assert meter.seconds_left() == 2.0
    clock.now = 53.0
    meter.file_finished("note.md", 600)
    assert meter.seconds_left() == 0.0


def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(4):
        (folder / f"note{n}.md").write_text(f"# Note {n}\n\nTrace trees record hot loops {n}.\n")
    return folder


def test_an_ingest_reports_time_left_once_a_rate_can_be_measured(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = notes(tmp_path)
    seen: list[IngestProgress] = []
    make_library().ingest([folder], progress=seen.append)
    finished = [p for p in seen if p.last_result is not None]
    assert [p.files_done for p in finished] == [1, 2, 3, 4]
    assert finished[0].eta_s is None
    assert all(p.eta_s is not None and p.eta_s >= 0 for p in finished[1:])
    assert finished[-1].eta_s == 0.0


def test_the_ingest_bar_shows_the_librarys_estimate(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    args = argparse.Namespace(
        paths=[notes(tmp_path)], password=None, retry_failed=False, remove_emptied=False
    )
    service = AssistantService(Settings(), Locations.under(tmp_path / "home").ensure())
    try:
        report = _ingest_with_bar(service, args, "default", console)
    finally:
        service.close()
    assert report.count("indexed") == 4
    assert "about 0 s left" in screen.getvalue(), "the last update drawn before the bar goes"
    assert time_left(None) == "estimating…"
    assert time_left(44.4) == "about 44 s left"
    assert time_left(5870) == "about 98 min left"


def test_a_scan_reports_its_pages_as_they_are_recognised(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    """A scanned PDF's pages are counted one by one while the file is read, each page being
    recognised named (OCR takes seconds a page), not all at once when the file ends."""
    font = scans.english_font(34)
    pages = [
        scans.text_page(f"Page {n}: the harbour master logs barges.", font, True) for n in (1, 2, 3)
    ]
    folder = tmp_path / "scans"
    folder.mkdir()
    scans.write_pdf(folder / "ledger.pdf", pages)
    seen: list[IngestProgress] = []
    report = make_library().ingest([folder], progress=seen.append)
    assert report.count("indexed") == 1
    reading = [(p.ocr_page, p.file_pages, p.pages_done) for p in seen if p.ocr_page is not None]
    assert list(dict.fromkeys(reading)) == [(1, 3, 0), (2, 3, 1), (3, 3, 2)], "in page order"
    assert all(Path(str(p.current_file)).name == "ledger.pdf" for p in seen if p.ocr_page)
    assert seen[-1].ocr_page is None and seen[-1].pages_done == 3
    assert reading_now(next(p for p in seen if p.ocr_page == 2)) == "OCR page 2/3 of ledger.pdf"
    assert reading_now(seen[-1]) == ""
