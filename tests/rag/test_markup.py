"""Word, HTML and EPUB files, written by the tests with the libraries made for them, indexed and
cited by heading (and by chapter for EPUB); hostile archives reported, the rest still indexed."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

import docx
from ebooklib import epub

from rag.library import Library
from rag.loaders import load_document


def _word(path: Path) -> None:
    document = docx.Document()
    document.core_properties.title = "Orchard handbook"
    document.add_heading("Orchard care", level=1)
    document.add_paragraph("General notes on the orchard.")
    document.add_heading("Pruning apple trees", level=2)
    document.add_paragraph("Prune apple trees in late winter, before the buds swell.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "Variety"
    table.rows[0].cells[1].text = "Bramley"
    document.save(str(path))


def _html(path: Path) -> None:
    path.write_text(
        "<html><head><title>Harbour guide</title><style>p {color: red}</style>"
        "<script>var hidden = 'never indexed';</script></head><body>"
        "<nav><a href='/'>Home</a></nav><h1>The harbour</h1><p>An old stone harbour.</p>"
        "<h2>Tides</h2><div><p>High tide comes twice a day; boats leave on the ebb.</p></div>"
        "</body></html>",
        encoding="utf-8",
    )


def _epub(path: Path) -> None:
    book = epub.EpubBook()
    book.set_identifier("test-book")
    book.set_title("Voyages")
    book.set_language("en")
    book.add_author("A. Sailor")
    chapters = []
    for number, (title, text) in enumerate(
        [
            ("The departure", "The ship left the harbour at dawn with a cargo of salt."),
            ("The storm", "A storm broke the mainmast off the coast of Brittany."),
        ],
        start=1,
    ):
        chapter = epub.EpubHtml(title=title, file_name=f"chapter{number}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1><p>{text}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = chapters
    epub.write_epub(str(path), book)


def test_headings_and_chapters_are_kept_for_context_and_citation(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    _word(folder / "orchard.docx")
    _html(folder / "harbour.html")
    _epub(folder / "voyages.epub")
    library = make_library(chunk_tokens=32)  # short passages: one section each
    report = library.ingest([folder])
    assert report.count("indexed") == 3, [(r.path, r.reason) for r in report.results]

    pruning = library.search("when to prune apple trees", k=1)[0]
    assert Path(pruning.file).name == "orchard.docx"
    assert pruning.heading is not None and "Pruning apple trees" in pruning.heading

    tides = library.search("high tide boats ebb", k=1)[0]
    assert Path(tides.file).name == "harbour.html" and "Tides" in (tides.heading or "")
    assert "never indexed" not in " ".join(hit.text for hit in library.search("hidden var", k=5))

    storm = library.search("storm broke the mainmast", k=1)[0]
    assert Path(storm.file).name == "voyages.epub"
    assert storm.page == "2" and "The storm" in (storm.heading or "")  # chapter 2


def test_a_word_table_and_the_document_title_are_read(tmp_path: Path) -> None:
    _word(tmp_path / "orchard.docx")
    document = load_document(tmp_path / "orchard.docx")
    assert document.title == "Orchard handbook"
    assert "Variety | Bramley" in document.pages[0].text


def test_hostile_archives_are_reported_and_the_rest_is_indexed(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    with zipfile.ZipFile(folder / "bomb.epub", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("mimetype", "application/epub+zip")
        archive.writestr("OEBPS/chapter.xhtml", b"\0" * (32 << 20))
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 this is not a Word file at all")
    with zipfile.ZipFile(folder / "empty.docx", "w") as archive:
        archive.writestr("readme.txt", "a zip, but no Word document inside")
    _html(folder / "harbour.htm")
    library = make_library()
    report = library.ingest([folder])
    reasons = {Path(r.path).name: r.reason or "" for r in report.results if r.status == "failed"}
    assert "zip bomb" in reasons["bomb.epub"]
    assert "not a valid zip archive" in reasons["broken.docx"]
    assert "unreadable Word file" in reasons["empty.docx"]
    assert report.count("indexed") == 1 and "harbour.htm" not in reasons
