"""Extraction of real corpus PDFs through the bounded parse worker, and of hostile ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.loaders import DocumentLoadError, PypdfExtractor, load_document
from rag.parse_worker import ParseWorker
from rag.textclean import clean_page_text, garbage_ratio, remove_running_lines


def test_pdfium_extracts_pages_labels_and_outline(pdf_corpus: Path) -> None:
    document = load_document(pdf_corpus / "clean" / "freeculture.pdf")
    assert document.extractor == "pdfium"
    assert len(document.pages) == 352
    assert document.title == "Free Culture"
    assert any(entry.title == "Chapter 1: Creators" for entry in document.outline)
    page = next(page for page in document.pages if "Steamboat Willie" in page.text)
    assert "FREE CULTURE" not in page.text.split("\n")[0]  # running header removed


def test_encrypted_pdf_opens_with_its_password(pdf_corpus: Path) -> None:
    path = pdf_corpus / "hostile" / "libreoffice-writer-password.pdf"
    with pytest.raises(DocumentLoadError, match="encrypted"):
        load_document(path)
    with pytest.raises(DocumentLoadError, match="password given does not open"):
        load_document(path, "wrong")
    assert "Lorem ipsum" in load_document(path, "openpassword").pages[0].text


def test_mojibake_from_pypdf_is_refused_and_pdfium_reads_real_chinese(pdf_corpus: Path) -> None:
    path = pdf_corpus / "hostile" / "XiaoBiaoSong.pdf"
    with pytest.raises(DocumentLoadError, match="garbage"):
        load_document(path, extractors=(PypdfExtractor(),))
    assert "关于红军作战的原则" in load_document(path).pages[0].text


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("imagemagick-CCITTFaxDecode.pdf", "no extractable text"),
        ("issue15590.pdf", "no extractable text"),
        ("issue3371.pdf", "encrypted"),
        ("unreadablemetadata.pdf", "unreadable PDF"),
    ],
)
def test_hostile_files_fail_with_a_reason_in_the_worker(
    pdf_corpus: Path, name: str, reason: str
) -> None:
    with ParseWorker(timeout_s=60, memory_mb=1024) as worker:
        with pytest.raises(DocumentLoadError, match=reason):
            worker.parse(pdf_corpus / "hostile" / name)
        # the same worker goes on serving after a failure
        assert worker.parse(pdf_corpus / "clean" / "minimal-document.pdf").has_text


def test_worker_times_out_and_recovers(pdf_corpus: Path) -> None:
    worker = ParseWorker(timeout_s=0.05, memory_mb=1024)
    try:
        with pytest.raises(DocumentLoadError, match="took longer"):
            worker.parse(pdf_corpus / "clean" / "freeculture.pdf")
        worker.timeout_s = 60
        assert worker.parse(pdf_corpus / "clean" / "minimal-document.pdf").has_text
    finally:
        worker.close()


def test_non_pdf_and_empty_files_are_refused(tmp_path: Path) -> None:
    fake = tmp_path / "notes.pdf"
    fake.write_text("just text")
    with pytest.raises(DocumentLoadError, match="not a PDF"):
        load_document(fake)
    empty = tmp_path / "empty.pdf"
    empty.touch()
    with pytest.raises(DocumentLoadError, match="0 bytes"):
        load_document(empty)


def test_text_files_decode_utf8_and_gbk(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# 标题\n自由文化。", encoding="utf-8")
    (tmp_path / "b.txt").write_bytes("版权法的历史。".encode("gbk"))
    assert "自由文化" in load_document(tmp_path / "a.md").pages[0].text
    assert load_document(tmp_path / "b.txt").pages[0].text == "版权法的历史。"


def test_cleaning_joins_hyphens_and_drops_running_lines() -> None:
    cleaned = clean_page_text("inter-\r\nesting and soft\x02\r\nhyphen ﬁle")
    assert cleaned == "interesting and softhyphen file"
    bodies = ["Tracing starts.", "Loops get hot.", "Guards fail.", "Trees grow.", "Done now."]
    pages = [f"ACME REPORT\n{body}\n{n}" for n, body in enumerate(bodies, start=1)]
    assert remove_running_lines(pages) == bodies


def test_garbage_ratio_separates_mojibake_from_languages() -> None:
    assert garbage_ratio("Ä¿ ¡¡ Â¼ ¹Ø ÓÚ ºì ¾ü ×÷ Õ½ µÄ") > 0.5
    for text in ("Größere Äpfel schmecken süß.", "自由文化是一种理念。", "Plain English text."):
        assert garbage_ratio(text) < 0.1
