"""OCR of scanned pages through the bounded parse worker and the library, on a scanned set the
tests draw (tests/rag/scans.py): real RapidOCR models, real PDFs, real Chroma and MiniLM."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.library import Library
from rag.loaders import DocumentLoadError, ExtractedDocument
from rag.ocr import TextBox, layout_text, wants_ocr
from rag.parse_worker import ParseWorker
from rag.types import IngestReport
from tests.rag import scans
from tests.rag.test_watch import _eventually, _names, watched  # noqa: F401 (a fixture)

MAX_CER = 0.2


def _chinese_font() -> object:
    font = scans.cjk_font(32)
    if font is None:
        pytest.skip("no CJK font: install the dev extra (noto-cjk-sans-otc) for the Chinese pages")
    return font


@pytest.fixture(scope="module")
def scanned_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, scans.ScannedPage]:
    english = scans.english_font(34)
    return {
        "english": scans.text_page(scans.ENGLISH, english, True, rotation=2.5, seed=3),
        "columns": scans.two_column_page(scans.ENGLISH_COLUMNS, english, rotation=-1.5),
    }


@pytest.fixture(scope="module")
def parsed_english(
    scanned_set: dict[str, scans.ScannedPage], tmp_path_factory: pytest.TempPathFactory
) -> ExtractedDocument:
    """The two English scans as one PDF, parsed once in the worker."""
    pdf = tmp_path_factory.mktemp("scans") / "english.pdf"
    scans.write_pdf(pdf, [scanned_set["english"], scanned_set["columns"]])
    with ParseWorker(timeout_s=60, memory_mb=2048) as worker:
        return worker.parse(pdf)


def test_a_rotated_noisy_english_scan_is_recognised(
    scanned_set: dict[str, scans.ScannedPage], parsed_english: ExtractedDocument
) -> None:
    page = parsed_english.pages[0]
    assert page.number == 1 and page.ocr
    assert scans.character_error_rate(scanned_set["english"].text, page.text) < MAX_CER
    assert "fortytwobargescarriedgrain" in "".join(page.text.split())


def test_a_two_column_scan_is_read_column_by_column(
    scanned_set: dict[str, scans.ScannedPage], parsed_english: ExtractedDocument
) -> None:
    page = parsed_english.pages[1]
    assert page.number == 2 and page.ocr
    assert scans.character_error_rate(scanned_set["columns"].text, page.text) < MAX_CER
    flat = " ".join(page.text.split())
    assert flat.index("poor apple harvest") < flat.index("drainage trench")


def test_a_chinese_scan_is_recognised(tmp_path: Path) -> None:
    page = scans.text_page(scans.CHINESE, _chinese_font(), False, rotation=-2.0, seed=5)
    pdf = scans.write_pdf(tmp_path / "chinese.pdf", [page])
    with ParseWorker(timeout_s=60, memory_mb=2048) as worker:
        recognised = worker.parse(pdf).pages[0]
    assert recognised.ocr
    assert scans.character_error_rate(page.text, recognised.text) < MAX_CER
    assert "地方志" in recognised.text


def test_with_ocr_off_a_scan_is_reported_and_nothing_else_changes(
    scanned_set: dict[str, scans.ScannedPage], tmp_path: Path
) -> None:
    pdf = scans.write_pdf(tmp_path / "scan.pdf", [scanned_set["english"]])
    with ParseWorker(timeout_s=60, memory_mb=1024, ocr="off") as worker:
        with pytest.raises(DocumentLoadError, match=r"no extractable text.*OCR is off"):
            worker.parse(pdf)


def test_a_page_past_its_time_limit_is_skipped_and_the_rest_kept(
    scanned_set: dict[str, scans.ScannedPage], tmp_path: Path, pdf_corpus: Path
) -> None:
    """A page's OCR is waited for apart from the file's parse limit; past its own limit that
    page is reported by number and skipped, a new worker goes on with the next pages (the text
    page after it is kept), and the worker still parses the next file. (Loading the models
    alone takes longer than the 10 ms limit on any machine.)"""
    import pypdf

    scan = scans.write_pdf(tmp_path / "scan.pdf", [scanned_set["english"]])
    writer = pypdf.PdfWriter()
    writer.append(scan)
    writer.append(pdf_corpus / "clean" / "minimal-document.pdf")
    writer.append(scan)
    writer.write(tmp_path / "mixed.pdf")
    late = "OCR took longer than ocr_page_timeout_s, 0.01 s"
    with ParseWorker(timeout_s=60, memory_mb=2048, ocr_page_timeout_s=0.01) as worker:
        document = worker.parse(tmp_path / "mixed.pdf")
        assert [bool(page.text) for page in document.pages] == [False, True, False]
        assert "Lorem ipsum" in document.pages[1].text
        assert document.warnings == (
            f"2 of 3 pages have no extractable text (not recognised, page 1: {late}; "
            f"page 3: {late})",
        )
        with pytest.raises(
            DocumentLoadError, match=f"scanned pages; not recognised, page 1: {late}"
        ):
            worker.parse(scan)
        assert worker.parse(pdf_corpus / "clean" / "minimal-document.pdf").has_text


def test_ocr_short_of_memory_skips_the_page_and_keeps_the_rest(
    scanned_set: dict[str, scans.ScannedPage], tmp_path: Path, pdf_corpus: Path
) -> None:
    """Under a limit too small for the OCR models (they need about 1.4 GB of address space), the
    scanned page is reported in the file's warnings and its text page is still indexed."""
    import pypdf

    writer = pypdf.PdfWriter()
    writer.append(pdf_corpus / "clean" / "minimal-document.pdf")
    writer.append(scans.write_pdf(tmp_path / "scan.pdf", [scanned_set["english"]]))
    writer.write(tmp_path / "mixed.pdf")
    with ParseWorker(timeout_s=60, memory_mb=768) as worker:
        document = worker.parse(tmp_path / "mixed.pdf")
    assert "Lorem ipsum" in document.pages[0].text and not document.pages[1].text
    assert document.warnings == (
        "1 of 2 pages have no extractable text (not recognised, page 2: recognising it needs "
        "more than parse_memory_mb)",
    )


def _image_bomb(path: Path, side: int) -> Path:
    """A one-page PDF whose only content is a ``side`` x ``side`` 1-bit image of zeros (a few
    hundred kilobytes on disk, ``side**2 / 8`` bytes once decoded)."""
    data = zlib.compress(bytes(side * side // 8), 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /XObject << /Im 5 0 R >> >> >>",
    ]
    content = b"q 612 0 0 792 0 0 cm /Im Do Q"
    streams = [
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 1 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (side, side, len(data), data),
    ]
    body, offsets = b"%PDF-1.4\n", []
    for number, obj in enumerate(objects + streams, 1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(offsets) + 1,
        xref,
    )
    path.write_bytes(body)
    return path


def test_an_image_bomb_is_not_rendered_and_the_worker_goes_on(
    tmp_path: Path, pdf_corpus: Path
) -> None:
    bomb = _image_bomb(tmp_path / "bomb.pdf", 40_000)
    with ParseWorker(timeout_s=60, memory_mb=1024, ocr="always") as worker:
        with pytest.raises(DocumentLoadError, match="not recognised.*40000x40000 pixels"):
            worker.parse(bomb)
        assert worker.parse(pdf_corpus / "clean" / "minimal-document.pdf").has_text


def test_the_scanned_corpus_page_yields_no_text_and_says_so(pdf_corpus: Path) -> None:
    """imagemagick-CCITTFaxDecode.pdf is a real fax-coded scan: a 16x16 smiley, no text."""
    with ParseWorker(timeout_s=60, memory_mb=2048) as worker:
        with pytest.raises(DocumentLoadError, match="no extractable text.*OCR found no text"):
            worker.parse(pdf_corpus / "hostile" / "imagemagick-CCITTFaxDecode.pdf")


def test_scanned_pages_are_searchable_cited_by_page_and_marked(
    make_library: Callable[..., Library],
    scanned_set: dict[str, scans.ScannedPage],
    pdf_corpus: Path,
    tmp_path: Path,
) -> None:
    """A PDF whose first page has a text layer and whose second is a scan: only the scan is
    recognised, and its passages are cited by page 2 and marked as OCR'd."""
    import pypdf

    folder = tmp_path / "docs"
    folder.mkdir()
    scan = scans.write_pdf(tmp_path / "scan.pdf", [scanned_set["english"]])
    writer = pypdf.PdfWriter()
    writer.append(pdf_corpus / "clean" / "minimal-document.pdf")
    writer.append(scan)
    writer.write(folder / "harbour.pdf")
    library = make_library()
    report = library.ingest([folder])
    assert [(Path(r.path).name, r.status, r.reason) for r in report.results] == [
        ("harbour.pdf", "indexed", None)
    ]
    hit = library.search("how many barges carried grain and timber in the flood year", k=1)[0]
    assert Path(hit.file).name == "harbour.pdf" and hit.page_end == 2
    assert library.manifest.chunks("default", [hit.chunk_id])[hit.chunk_id].ocr
    lorem = library.search("Lorem ipsum dolor sit amet consetetur sadipscing", k=1)[0]
    assert lorem.page == "1"
    assert not library.manifest.chunks("default", [lorem.chunk_id])[lorem.chunk_id].ocr


def test_a_scan_dropped_into_a_watched_folder_becomes_searchable(
    watched: tuple[Library, Path, list[IngestReport]],  # noqa: F811
    tmp_path: Path,
) -> None:
    library, folder, _ = watched
    note = "The night clerk counted forty two barges of grain waiting at anchor in the bay."
    # A short page: the watcher's bound (120 s) must hold on a loaded machine too.
    page = scans.text_page(note, scans.english_font(34), True, rotation=1.0)
    scan = scans.write_pdf(tmp_path / "ledger.pdf", [page])
    scan.rename(folder / "ledger.pdf")  # dropped in whole, as a finished download is
    _eventually(lambda: "ledger.pdf" in _names(library), "a scanned PDF")
    hit = library.search("barges of grain waiting at anchor", k=1)[0]
    assert Path(hit.file).name == "ledger.pdf" and hit.page == "1"


def test_a_chinese_scan_is_found_by_its_words(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    page = scans.text_page(scans.CHINESE, _chinese_font(), False, rotation=1.5, seed=7)
    folder = tmp_path / "docs"
    folder.mkdir()
    scans.write_pdf(folder / "县志.pdf", [page])
    library = make_library()
    library.ingest([folder])
    hits = library.search("手抄的地方志记录了什么", k=1)
    assert hits and Path(hits[0].file).name == "县志.pdf" and hits[0].page == "1"


def test_with_ocr_off_the_scan_is_reported_and_the_rest_indexed(
    make_library: Callable[..., Library], scanned_set: dict[str, scans.ScannedPage], tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    scans.write_pdf(folder / "scan.pdf", [scanned_set["english"]])
    (folder / "notes.md").write_text("The orchard needs a new fence before winter.\n")
    report = make_library(ocr="off").ingest([folder])
    results = {Path(r.path).name: (r.status, r.reason) for r in report.results}
    assert results["notes.md"][0] == "indexed"
    status, reason = results["scan.pdf"]
    assert status == "failed" and reason is not None and "OCR is off" in reason


@pytest.mark.parametrize(
    ("text", "garbage", "mode", "wanted"),
    [
        ("", False, "auto", True),
        ("", False, "off", False),
        ("", True, "auto", False),
        ("", True, "always", True),
        ("12", False, "auto", False),
        ("12", False, "always", True),
        ("A whole page of text layer " * 5, False, "always", False),
    ],
)
def test_which_pages_are_recognised(text: str, garbage: bool, mode: str, wanted: bool) -> None:
    assert wants_ocr(text, garbage, mode) is wanted  # type: ignore[arg-type]


def _line(left: float, top: float, text: str, width: float = 300, slope: float = 0.0) -> TextBox:
    height = 30
    drop = width * slope
    corners = (
        (left, top),
        (left + width, top + drop),
        (left + width, top + drop + height),
        (left, top + height),
    )
    return TextBox(corners, text)


def test_layout_joins_pieces_of_a_skewed_line_and_reads_columns_in_order() -> None:
    skewed = [_line(100, 100, "first half", slope=0.05), _line(420, 116, "second half", slope=0.05)]
    assert layout_text(skewed) == "first half second half"
    title = [_line(100, 40, "A title over both columns", width=1000)]
    left = [_line(100, 100 + 45 * row, f"left {row}") for row in range(4)]
    right = [_line(800, 100 + 45 * row, f"right {row}") for row in range(4)]
    text = layout_text(title + right + left)
    assert text.split("\n\n") == [
        "A title over both columns",
        "left 0\nleft 1\nleft 2\nleft 3",
        "right 0\nright 1\nright 2\nright 3",
    ]
    assert layout_text([_line(0, 0, "水利"), _line(310, 0, "工程")]) == "水利工程"


def test_spaces_dropped_after_punctuation_are_put_back() -> None:
    from rag.ocr import _spaced

    assert _spaced("the clerk.In winter,grain") == "the clerk. In winter, grain"
    assert _spaced("version 3.5 of example.com") == "version 3.5 of example.com"
