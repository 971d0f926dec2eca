"""Documents in: per-page text with page numbers, labels, title and outline headings.

PDF extraction is pluggable (:class:`PdfExtractor`). PDFium (pypdfium2) is the primary: it is an
order of magnitude faster than pypdf and opens files pypdf refuses. pypdf is the fallback when
PDFium fails on a file. Plain text and Markdown files are read directly. Every problem with one file
becomes a :class:`DocumentLoadError` whose message is the reason shown to the user.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from rag.textclean import (
    GARBAGE_THRESHOLD,
    clean_line,
    clean_page_text,
    garbage_ratio,
    remove_running_lines,
)

PDF_SUFFIXES = frozenset({".pdf"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
SUPPORTED_SUFFIXES = PDF_SUFFIXES | TEXT_SUFFIXES
_TEXT_ENCODINGS = ("utf-8-sig", "gb18030", "cp1252")


class DocumentLoadError(Exception):
    """One file could not be read; the message says why, for the ingest summary."""


class EncryptedDocumentError(DocumentLoadError):
    """The PDF needs a password we do not have (no other extractor will do better)."""


@dataclass(frozen=True)
class ExtractedPage:
    number: int
    """1-based page number."""
    text: str
    label: str | None = None
    """Printed page label ("iv", "A-3") where the PDF defines labels."""


@dataclass(frozen=True)
class OutlineEntry:
    """A bookmark of the PDF: its title and the 1-based page it points to."""

    page: int
    title: str


@dataclass(frozen=True)
class ExtractedDocument:
    pages: tuple[ExtractedPage, ...]
    title: str | None = None
    author: str | None = None
    outline: tuple[OutlineEntry, ...] = ()
    extractor: str = ""
    warnings: tuple[str, ...] = field(default=())

    @property
    def has_text(self) -> bool:
        return any(page.text.strip() for page in self.pages)


class PdfExtractor(Protocol):
    """Reads a PDF into pages; raises :class:`DocumentLoadError` with a reason on failure."""

    name: str

    def extract(self, path: Path, password: str | None) -> ExtractedDocument: ...


class PdfiumExtractor:
    """PDFium through pypdfium2: fast and tolerant of broken files."""

    name = "pdfium"

    def extract(self, path: Path, password: str | None) -> ExtractedDocument:
        import pypdfium2 as pdfium

        document = self._open(pdfium, path, password)
        try:
            pages: list[ExtractedPage] = []
            failed = 0
            for index in range(len(document)):
                try:
                    page = document[index]
                    textpage = page.get_textpage()
                    text = textpage.get_text_bounded()
                    textpage.close()
                    page.close()
                except pdfium.PdfiumError:
                    text, failed = "", failed + 1
                pages.append(ExtractedPage(index + 1, text, document.get_page_label(index) or None))
            if pages and failed == len(pages):
                raise DocumentLoadError("no page could be read (broken page tree)")
            metadata = document.get_metadata_dict(skip_empty=True)
            outline = tuple(
                OutlineEntry(dest.get_index() + 1, bookmark.get_title().strip())
                for bookmark in document.get_toc(max_depth=4)
                if (dest := bookmark.get_dest()) is not None and dest.get_index() is not None
            )
            warnings = (f"{failed} pages could not be read",) if failed else ()
            return ExtractedDocument(
                tuple(pages),
                title=metadata.get("Title"),
                author=metadata.get("Author"),
                outline=outline,
                extractor=self.name,
                warnings=warnings,
            )
        finally:
            document.close()

    @staticmethod
    def _open(pdfium: Any, path: Path, password: str | None) -> Any:
        attempts = [None] if password is None else [None, password]
        for attempt in attempts:
            try:
                return pdfium.PdfDocument(str(path), password=attempt)
            except pdfium.PdfiumError as error:
                if "password" not in str(error).lower():
                    raise DocumentLoadError(_pdfium_reason(error)) from error
        if password is None:
            raise EncryptedDocumentError("encrypted: needs a password (use --password)")
        raise EncryptedDocumentError("encrypted: the password given does not open it")


def _pdfium_reason(error: Exception) -> str:
    match = re.search(r"\(PDFium: ([^)]*)\)", str(error))
    return f"unreadable PDF: {match.group(1) if match else error}"


class PypdfExtractor:
    """pypdf: slower, but a second opinion when PDFium cannot open a file."""

    name = "pypdf"

    def extract(self, path: Path, password: str | None) -> ExtractedDocument:
        import pypdf

        try:
            reader = pypdf.PdfReader(path)
            if reader.is_encrypted:
                self._decrypt(reader, password)
            pages = tuple(
                ExtractedPage(index + 1, page.extract_text() or "", self._label(reader, index))
                for index, page in enumerate(reader.pages)
            )
            metadata = reader.metadata
            return ExtractedDocument(
                pages,
                title=(metadata.title if metadata else None) or None,
                author=(metadata.author if metadata else None) or None,
                outline=tuple(self._outline(reader, reader.outline)),
                extractor=self.name,
            )
        except DocumentLoadError:
            raise
        except Exception as error:  # pypdf raises outside its hierarchy too (DeprecationError...)
            raise DocumentLoadError(f"unreadable PDF: {type(error).__name__}: {error}") from error

    @staticmethod
    def _decrypt(reader: Any, password: str | None) -> None:
        if reader.decrypt(""):
            return
        if password is None:
            raise EncryptedDocumentError("encrypted: needs a password (use --password)")
        if not reader.decrypt(password):
            raise EncryptedDocumentError("encrypted: the password given does not open it")

    @staticmethod
    def _label(reader: Any, index: int) -> str | None:
        try:
            label = reader.page_labels[index]
        except Exception:  # labels are optional decoration: a broken label tree is not fatal
            return None
        return label if label and label != str(index + 1) else None

    def _outline(self, reader: Any, items: Sequence[Any]) -> list[OutlineEntry]:
        entries: list[OutlineEntry] = []
        for item in items:
            if isinstance(item, list):
                entries.extend(self._outline(reader, item))
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # an outline entry pointing nowhere is skipped, not fatal
                continue
            if page is not None and page >= 0:
                entries.append(OutlineEntry(page + 1, str(item.title).strip()))
        return entries


DEFAULT_EXTRACTORS: tuple[PdfExtractor, ...] = (PdfiumExtractor(), PypdfExtractor())


def load_document(
    path: Path,
    password: str | None = None,
    extractors: Sequence[PdfExtractor] = DEFAULT_EXTRACTORS,
) -> ExtractedDocument:
    """Read one file into cleaned pages, or raise :class:`DocumentLoadError` saying why not."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentLoadError(f"unsupported file type {suffix or '(none)'}")
    try:
        size = path.stat().st_size
    except FileNotFoundError as error:
        raise DocumentLoadError("file vanished before it could be read") from error
    except OSError as error:
        raise DocumentLoadError(f"cannot read: {error.strerror}") from error
    if size == 0:
        raise DocumentLoadError("empty file (0 bytes)")
    if suffix in PDF_SUFFIXES:
        document = _load_pdf(path, password, extractors)
    else:
        document = _load_text(path)
    return _finish(document)


def _load_pdf(
    path: Path, password: str | None, extractors: Sequence[PdfExtractor]
) -> ExtractedDocument:
    header = _read_head(path)
    if b"%PDF-" not in header:
        raise DocumentLoadError(f"not a PDF: the content starts with {header[:16]!r}")
    failures: list[str] = []
    fallback: ExtractedDocument | None = None
    for extractor in extractors:
        try:
            document = extractor.extract(path, password)
        except EncryptedDocumentError:
            raise
        except DocumentLoadError as error:
            failures.append(str(error))
            continue
        if document.has_text:
            return document
        fallback = fallback or document
    if fallback is not None:
        return fallback
    raise DocumentLoadError(failures[0] if failures else "no PDF extractor available")


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(1024)
    except OSError as error:
        raise DocumentLoadError(f"cannot read: {error.strerror}") from error


def _load_text(path: Path) -> ExtractedDocument:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DocumentLoadError(f"cannot read: {error.strerror}") from error
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DocumentLoadError("binary content in a text file")
    text = _decode(data)
    pages = tuple(ExtractedPage(number, part) for number, part in enumerate(text.split("\f"), 1))
    return ExtractedDocument(pages, title=path.stem, extractor="text")


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    for encoding in _TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _clean_in_pieces(text: str) -> str:
    """:func:`clean_page_text` over pieces of at most ``_CLEAN_PIECE`` characters (see
    :func:`_piece_end`), without its whole-page temporary copies (a 100 MB text file is one page;
    its character-by-character pass alone took gigabytes). Cleaning is line-local, so the text
    is the same, but for the rare cut that falls inside a paragraph of text without blank lines."""
    if len(text) <= _CLEAN_PIECE:
        return clean_page_text(text)
    cleaned: list[str] = []
    start = 0
    while start < len(text):
        end, separator = _piece_end(text, start)
        piece = clean_page_text(text[start:end])
        if piece:
            cleaned.extend((piece, separator))
        start = end
    return "".join(cleaned[:-1])


def _piece_end(text: str, start: int) -> tuple[int, str]:
    """Where the piece of ``text`` from ``start`` ends, and what stands for the cut when the
    cleaned pieces are joined (cleaning strips the whitespace at both ends of a piece).

    A blank line is cut as a blank line; a line end not after a hyphen (which cleaning would
    join) as a line end; otherwise the cut falls between two characters that are not spaces.
    """
    limit = start + _CLEAN_PIECE
    if limit >= len(text):
        return len(text), ""
    blank = max(_BLANK_LINE.finditer(text, start, limit), key=lambda m: m.end(), default=None)
    if blank is not None and blank.start() > start:
        return blank.end(), "\n\n"
    line = text.rfind("\n", start, limit)
    while line > start and text[line - 2 if text[line - 1] == "\r" else line - 1] in "-\xad\x02":
        line = text.rfind("\n", start, line)
    if line > start:
        return line + 1, "\n"
    cut = limit
    while cut > start + 1 and (text[cut - 1].isspace() or text[cut].isspace()):
        cut -= 1
    return (cut if cut > start + 1 else limit), ""


_CLEAN_PIECE = 1 << 20
"""Characters cleaned at a time."""
_BLANK_LINE = re.compile(r"\n[ \t\r\f\v]*\n")


def _finish(document: ExtractedDocument) -> ExtractedDocument:
    """Clean every page and the metadata; drop garbage pages; refuse documents left without
    readable text."""
    cleaned = remove_running_lines([_clean_in_pieces(page.text) for page in document.pages])
    garbage = [garbage_ratio(text) > GARBAGE_THRESHOLD for text in cleaned]
    readable = [text if not bad else "" for text, bad in zip(cleaned, garbage, strict=True)]
    pages = tuple(
        replace(page, text=text, label=clean_line(page.label))
        for page, text in zip(document.pages, readable, strict=True)
    )
    outline = tuple(
        replace(entry, title=title)
        for entry in document.outline
        if (title := clean_line(entry.title)) is not None
    )
    document = replace(
        document,
        title=clean_line(document.title),
        author=clean_line(document.author),
        outline=outline,
    )
    if not any(readable):
        if any(garbage):
            raise DocumentLoadError(
                "text extracts as garbage (mojibake, likely a font without a Unicode map); "
                "not indexed"
            )
        raise DocumentLoadError(
            "no extractable text (image-only or scanned pages; OCR is not supported yet)"
        )
    warnings = document.warnings
    if any(garbage):
        warnings += (f"{sum(garbage)} pages extract as garbage and were skipped",)
    empty = sum(1 for text, bad in zip(cleaned, garbage, strict=True) if not text and not bad)
    if empty:
        warnings += (f"{empty} of {len(pages)} pages have no extractable text",)
    return replace(document, pages=pages, warnings=warnings)
