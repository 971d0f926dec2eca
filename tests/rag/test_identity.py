"""Document identity: the title and first-page facts a question names its document by."""

from __future__ import annotations

from rag.identity import IDENTITY_CHARS, document_identity
from rag.loaders import ExtractedDocument, ExtractedPage

REPORT = """Page 1 of 4
National Transportation Safety Board
Aviation Accident Final Report
Location: Tallahassee, FL Accident Number: NYC08CA055
Date & Time: 12/08/2007, 1730 EST Registration: N5921D
Aircraft: Piper PA-22-150 Aircraft Damage: Substantial
The pilot, age 85, was attempting to land a Piper PA-22-150 at his private airstrip, and the
airplane contacted trees, then utility wires, and came to rest upright in a field near the strip.
"""


def test_a_report_is_known_by_its_title_file_name_and_form_fields() -> None:
    document = ExtractedDocument((ExtractedPage(1, REPORT),), title=None)
    identity = document_identity(document, "/reports/20071229X02007.pdf").splitlines()
    assert identity[0] == "National Transportation Safety Board"
    assert "20071229X02007" in identity
    assert any("Tallahassee" in line for line in identity)
    assert any("PA-22-150" in line for line in identity)
    assert not any(line.startswith("Page 1") for line in identity)
    assert not any("utility wires" in line for line in identity)  # narrative is not identity


def test_metadata_title_wins_unless_generic_and_length_is_bounded() -> None:
    titled = ExtractedDocument((ExtractedPage(1, "Some text.\n" * 3),), title="Apple Inc. 10-Q")
    assert document_identity(titled, "/f/q3.pdf").splitlines()[0] == "Apple Inc. 10-Q"
    generic = ExtractedDocument((ExtractedPage(1, "Free Culture\nby Lessig"),), title="untitled")
    assert document_identity(generic, "/f/book.pdf").splitlines()[0] == "Free Culture"
    long_page = "\n".join(f"Field {n}: value {n} 2024" for n in range(200))
    many = ExtractedDocument((ExtractedPage(1, long_page),))
    assert len(document_identity(many, "/f/x.pdf")) <= IDENTITY_CHARS


def test_an_article_written_as_one_line_is_known_by_its_lead() -> None:
    lead = "2023-08-17 07:43:54，正文：8 月 17 日消息，哈佛大学科学家克隆出一台超级计算机。"
    article = lead * 5
    document = ExtractedDocument((ExtractedPage(1, article),), title="00047")
    identity = document_identity(document, "/news/00047.txt").splitlines()
    assert identity[0].startswith("2023-08-17") and identity[0].endswith("。")
    assert len(identity[0]) <= 120
