"""Which document a passage comes from, as text a search can match.

A question names its document the way a reader knows it ("Apple's Q3 2022 report", "the Piper
accident in Tallahassee", "the ovarian cancer support-group trial"), but a passage about inventory
or a landing rarely repeats those words. So every passage is matched together with a short
*identity* of its document: its title (PDF metadata when it looks like a real title, else the
first heading-like line), the file name's words, and the identifying facts of the first page:
lines that carry dates, periods, identifiers, organisation names or short ``Key: value`` fields,
which is where documents of one form (filings, reports, protocols, articles) say who, what and
when. The identity is used for matching only; the text shown and cited stays the passage.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from rag.loaders import ExtractedDocument

IDENTITY_CHARS = 360
"""Upper bound on the identity's length: enough for a title and a few facts, little enough that
it does not drown the passage it is matched with."""
_FIRST_PAGE_LINES = 40
_LEAD_CHARS = 120
_LEAD_END = re.compile(r"(?<=[。！？!?])|(?<=\. )")
_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_DATE = re.compile(
    r"\b(?:19|20)\d\d\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|"
    r"nov|dec)[a-z]*\.?\s+\d{1,2}\b|\bQ[1-4]\b|quarter|fiscal|period ended|"
    rf"\d{{4}}年|\d{{1,2}}月\d{{1,2}}日|[{_CJK}]*季度",
    re.IGNORECASE,
)
_IDENTIFIER = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{3,}\b")
_ORGANISATION = re.compile(
    r"\b(?:Inc|Corp|Corporation|Ltd|LLC|PLC|Co|Company|Group|Holdings|University|Hospital|"
    r"Institute|Board|Agency|Ministry|Department|Commission)\b\.?|公司|集团|大学|医院|研究院|委员会|部门",
)
_FIELD = re.compile(r"^[A-Z][A-Za-z &/().-]{1,30}:\s*\S")
_GENERIC_TITLES = re.compile(
    r"^(?:untitled|document\d*|microsoft word - .*|slide \d+|page \d+|\d+|none|title)$",
    re.IGNORECASE,
)
_PAGE_FURNITURE = re.compile(r"^(?:page \d+( of \d+)?|\d+|- \d+ -)$", re.IGNORECASE)


def document_identity(document: ExtractedDocument, path: str) -> str:
    """Title, file-name words and first-page facts of ``document``, one line each, bounded."""
    lines = _first_page_lines(document)
    parts: list[str] = []
    title = _title(document, lines, PurePath(path).stem)
    if title:
        parts.append(title)
    name = _file_words(path)
    if name and name.lower() not in (title or "").lower():
        parts.append(name)
    parts.extend(line for line in lines if _identifying(line) and line not in parts)
    return _bounded(parts)


def _first_page_lines(document: ExtractedDocument) -> list[str]:
    """The first page with text, as stripped lines without page furniture."""
    for page in document.pages:
        lines = [" ".join(line.split()) for line in page.text.splitlines()]
        kept = [line for line in lines if line and not _PAGE_FURNITURE.match(line)]
        if kept:
            return kept[:_FIRST_PAGE_LINES]
    return []


def _title(document: ExtractedDocument, lines: list[str], stem: str) -> str | None:
    """Metadata title unless it is generic or just the file name, else the first title-like line."""
    metadata = " ".join((document.title or "").split())
    if metadata and metadata != stem and not _GENERIC_TITLES.match(metadata) and len(metadata) > 3:
        return metadata[:160]
    for line in lines[:5]:
        line = line.lstrip("#").strip()
        if 8 <= len(line) <= 160 and re.search(rf"[A-Za-z{_CJK}]", line):
            return line
    if lines:  # one long first line (an article's lead): its opening stands for the title
        return _LEAD_END.split(lines[0][:_LEAD_CHARS])[0]
    return None


def _file_words(path: str) -> str:
    """``Apple_10-Q_2022Q3.pdf`` -> ``Apple 10-Q 2022Q3``: file names often carry the identity."""
    stem = PurePath(path).stem
    return " ".join(re.split(r"[_\s.]+", stem)).strip()


def _identifying(line: str) -> bool:
    if len(line) > 200:
        return False
    return bool(
        _DATE.search(line)
        or _IDENTIFIER.search(line)
        or _ORGANISATION.search(line)
        or _FIELD.match(line)
    )


def _bounded(parts: list[str]) -> str:
    kept: list[str] = []
    size = 0
    for part in parts:
        if size + len(part) > IDENTITY_CHARS:
            room = IDENTITY_CHARS - size
            if room > 40:
                kept.append(part[:room].rsplit(" ", 1)[0])
            break
        kept.append(part)
        size += len(part) + 1
    return "\n".join(kept)
