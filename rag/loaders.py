"""Documents in: per-page text with page numbers, labels, title and outline headings.

PDF extraction is pluggable (:class:`PdfExtractor`). PDFium (pypdfium2) is the primary: it is an
order of magnitude faster than pypdf and opens files pypdf refuses. pypdf is the fallback when
PDFium fails on a file. Plain text and Markdown files are read directly. Every problem with one file
becomes a :class:`DocumentLoadError` whose message is the reason shown to the user.

:func:`stream_document` gives a document as parts (its metadata, then its pages, then the warnings
found on the way), so an ingest never holds a whole large document: a text file over
:data:`STREAM_TEXT_BYTES` is read, decoded and cleaned a piece at a time.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TextIO

from rag.ocr import OcrError, OcrMode, recognise_pdf_pages, wants_ocr
from rag.textclean import (
    GARBAGE_THRESHOLD,
    clean_line,
    clean_page_text,
    garbage_ratio,
    remove_running_lines,
)

PDF_SUFFIXES = frozenset({".pdf"})
TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown"})
MARKUP_SUFFIXES = frozenset({".docx", ".html", ".htm", ".xhtml", ".epub"})
"""Word, HTML and EPUB, read by :mod:`rag.markup`."""
SUPPORTED_SUFFIXES = PDF_SUFFIXES | TEXT_SUFFIXES | MARKUP_SUFFIXES
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
    ocr: bool = False
    """The text was recognised from the page's image (:mod:`rag.ocr`), not read from the PDF."""


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


@dataclass(frozen=True)
class DocumentEnd:
    """The last part of a streamed document: what was found only by reading all of it."""

    warnings: tuple[str, ...] = ()


DocumentPart = ExtractedDocument | ExtractedPage | DocumentEnd
"""A streamed document is its metadata (an :class:`ExtractedDocument` without pages), its pages
in order (a long text page may come in several parts with the same number), then a
:class:`DocumentEnd`."""


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
    ocr: OcrMode = "auto",
) -> ExtractedDocument:
    """Read one file into cleaned pages, or raise :class:`DocumentLoadError` saying why not."""
    return collect(stream_document(path, password, extractors, ocr))


def stream_document(
    path: Path,
    password: str | None = None,
    extractors: Sequence[PdfExtractor] = DEFAULT_EXTRACTORS,
    ocr: OcrMode = "auto",
    on_ocr: Callable[[int, int], None] | None = None,
    resume: OcrResume | None = None,
) -> Iterator[DocumentPart]:
    """The parts of one file (see :data:`DocumentPart`); a problem raises
    :class:`DocumentLoadError`, possibly after some pages (a large text file is judged as it is
    read). PDFs and smaller text files are read whole first, as running headers need all pages;
    a PDF's pages that need OCR (``ocr``, see :func:`rag.ocr.wants_ocr`) are then recognised one
    at a time as they are handed on, ``on_ocr(page number, pages in the document)`` called
    before each. ``resume`` continues a PDF whose recognition of a page was cut off."""
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
    if suffix in TEXT_SUFFIXES and size > STREAM_TEXT_BYTES:
        yield from _stream_text(path)
        return
    if suffix in PDF_SUFFIXES:
        yield from _stream_pdf(path, password, extractors, ocr, on_ocr, resume)
        return
    if suffix in MARKUP_SUFFIXES:
        from rag.markup import load_markup  # it builds on this module's types

        loaded = load_markup(path)
    else:
        loaded = _load_text(path)
    yield from _parts(_finish(loaded))


def _parts(document: ExtractedDocument) -> Iterator[DocumentPart]:
    yield replace(document, pages=(), warnings=())
    yield from document.pages
    yield DocumentEnd(document.warnings)


def collect(parts: Iterable[DocumentPart]) -> ExtractedDocument:
    """The whole document from its parts; parts of one page are joined as paragraphs."""
    head: ExtractedDocument | None = None
    pages: list[ExtractedPage] = []
    for part in parts:
        if isinstance(part, ExtractedDocument):
            head = part
        elif isinstance(part, ExtractedPage):
            if pages and pages[-1].number == part.number:
                joined = "\n\n".join(text for text in (pages[-1].text, part.text) if text)
                pages[-1] = replace(pages[-1], text=joined)
            else:
                pages.append(part)
        else:
            assert head is not None, "a document's parts start with its metadata"
            return replace(head, pages=tuple(pages), warnings=part.warnings)
    raise DocumentLoadError("the document ended before its last part")


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
    _refuse_binary(data[:4096])
    text = _decode(data)
    pages = tuple(ExtractedPage(number, part) for number, part in enumerate(text.split("\f"), 1))
    return ExtractedDocument(pages, title=path.stem, extractor="text")


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _refuse_binary(head: bytes) -> None:
    if b"\x00" in head and not head.startswith(_UTF16_BOMS):
        raise DocumentLoadError("binary content in a text file")


def _decode(data: bytes) -> str:
    if data.startswith(_UTF16_BOMS):
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


def _finish(document: ExtractedDocument, ocr_note: str | None = None) -> ExtractedDocument:
    """Clean every page and the metadata; drop garbage pages; refuse documents left without
    readable text."""
    document, garbage = _cleaned(document)
    readable = [bool(page.text) for page in document.pages]
    return replace(document, warnings=document.warnings + _verdict(readable, garbage, ocr_note))


def _cleaned(document: ExtractedDocument) -> tuple[ExtractedDocument, list[bool]]:
    """The document with its pages and metadata cleaned and garbage pages emptied, and which
    pages were garbage."""
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
        pages=pages,
        title=clean_line(document.title),
        author=clean_line(document.author),
        outline=outline,
    )
    return document, garbage


def _verdict(readable: list[bool], garbage: list[bool], ocr_note: str | None) -> tuple[str, ...]:
    """The warnings of a document whose final pages have text where ``readable`` says (garbage
    ones emptied); raises :class:`DocumentLoadError` when none is readable."""
    if not any(readable):
        raise _no_text(any(garbage), ocr_note)
    warnings: tuple[str, ...] = ()
    if any(garbage):
        warnings += (f"{sum(garbage)} pages extract as garbage and were skipped",)
    empty = sum(1 for text, bad in zip(readable, garbage, strict=True) if not text and not bad)
    if empty:
        note = f" ({ocr_note})" if ocr_note else ""
        warnings += (f"{empty} of {len(readable)} pages have no extractable text{note}",)
    return warnings


def _no_text(garbage: bool, ocr_note: str | None = None) -> DocumentLoadError:
    """Why a document without readable text is refused."""
    if garbage:
        return DocumentLoadError(
            "text extracts as garbage (mojibake, likely a font without a Unicode map); not indexed"
        )
    note = f"; {ocr_note}" if ocr_note else ""
    return DocumentLoadError(f"no extractable text (image-only or scanned pages{note})")


def _stream_pdf(
    path: Path,
    password: str | None,
    extractors: Sequence[PdfExtractor],
    ocr: OcrMode,
    on_ocr: Callable[[int, int], None] | None,
    resume: OcrResume | None = None,
) -> Iterator[DocumentPart]:
    """A PDF's parts: the text layer cleaned whole, then each page that needs OCR recognised
    as it is reached, so a long scan is handed on page by page in bounded memory. With
    ``resume``, only the parts from its page on."""
    loaded = _load_pdf(path, password, extractors)
    document, garbage = _cleaned(loaded)
    wanted = [
        page.number
        for page, bad in zip(document.pages, garbage, strict=True)
        if wants_ocr(page.text, bad, ocr)
    ]
    if not wanted and resume is None:
        note = "OCR is off, see library.ocr" if ocr == "off" else None
        readable = [bool(page.text) for page in document.pages]
        yield from _parts(
            replace(document, warnings=loaded.warnings + _verdict(readable, garbage, note))
        )
        return
    if resume is None:
        yield replace(document, pages=(), warnings=())
    after = resume.page if resume else 0
    recogniser = _PageRecogniser(
        path,
        password,
        [number for number in wanted if number > after],
        lambda number: on_ocr(number, len(document.pages)) if on_ocr else None,
        resume.skipped if resume else (),
    )
    readable, flags = [], []
    for page, bad in zip(document.pages, garbage, strict=True):
        if page.number < after:  # handed on before the worker was replaced
            assert resume is not None
            recognised = page.number in resume.with_text
            readable.append(bool(page.text) or recognised)
            flags.append(bad and not recognised)
            continue
        if page.number in recogniser.wanted and (text := recogniser.text(page.number)):
            page, bad = replace(page, text=text, ocr=True), False
        readable.append(bool(page.text))
        flags.append(bad)
        yield page
    yield DocumentEnd(loaded.warnings + _verdict(readable, flags, recogniser.note()))


@dataclass(frozen=True)
class OcrResume:
    """Where a PDF's parse starts again in a new worker after recognising ``page`` ran past its
    time limit: the parts before it were handed on already, and it is handed on unrecognised."""

    page: int
    with_text: frozenset[int]
    """Pages before ``page`` handed on with text (recognised ones among them)."""
    skipped: tuple[str, ...]
    """``page N: reason`` for the pages left unrecognised so far, ``page``'s included."""


class _PageRecogniser:
    """Recognises a PDF's wanted pages in order, and remembers why some gave no text."""

    def __init__(
        self,
        path: Path,
        password: str | None,
        numbers: list[int],
        on_ocr: Callable[[int], None],
        skipped: tuple[str, ...] = (),
    ) -> None:
        self.wanted = frozenset(numbers)
        self._pages = recognise_pdf_pages(path, password, numbers)
        self._on_ocr = on_ocr
        self._failure: str | None = None
        self._skipped: list[str] = list(skipped)

    def text(self, number: int) -> str:
        """The page's cleaned recognised text ("" when it has none or OCR failed)."""
        if self._failure is not None:
            return ""
        self._on_ocr(number)
        try:
            page = next(self._pages)
        except OcrError as error:
            self._failure = str(error)
            return ""
        if page.skipped:
            self._skipped.append(f"page {number}: {page.skipped}")
            return ""
        text = clean_page_text(page.text)
        return text if garbage_ratio(text) <= GARBAGE_THRESHOLD else ""

    def note(self) -> str:
        """What OCR did about the pages left without text."""
        if self._failure is not None:
            return f"OCR failed: {self._failure}"
        if self._skipped:
            return "not recognised, " + "; ".join(self._skipped)
        return "OCR found no text"


STREAM_TEXT_BYTES = 4 << 20
"""Text files larger than this are streamed: read, decoded, cleaned and handed on a piece
(``_CLEAN_PIECE`` characters) at a time. Running headers are not looked for in them (that needs
every page at once), and each piece is judged garbage or not on its own."""


def _stream_text(path: Path) -> Iterator[DocumentPart]:
    """A large text file as parts, in memory bounded by the piece size whatever the file's."""
    encoding = _text_encoding(path)
    yield ExtractedDocument((), title=path.stem, extractor="text")
    pages = empty = garbage = 0
    readable = False
    page_has_text = False
    try:
        with path.open(encoding=encoding, newline="") as handle:
            for number, piece, page_ends in _page_pieces(handle):
                text = clean_page_text(piece)
                if text and garbage_ratio(text) > GARBAGE_THRESHOLD:
                    garbage += 1
                elif text:
                    readable = page_has_text = True
                    yield ExtractedPage(number, text)
                if page_ends:
                    pages = number
                    if not page_has_text:
                        empty += 1
                        yield ExtractedPage(number, "")
                    page_has_text = False
    except OSError as error:
        raise DocumentLoadError(f"cannot read: {error.strerror}") from error
    if not readable:
        raise _no_text(garbage > 0)
    warnings: tuple[str, ...] = ()
    if garbage:
        warnings += (f"{garbage} parts of the text extract as garbage and were skipped",)
    if empty:
        warnings += (f"{empty} of {pages} pages have no extractable text",)
    yield DocumentEnd(warnings)


def _page_pieces(handle: TextIO) -> Iterator[tuple[int, str, bool]]:
    """``(page number, raw text, whether the page ends here)``: pages end at form feeds, and a
    longer page is cut where :func:`_piece_end` cuts (a blank line, else a line end)."""
    number, buffer, at_end = 1, "", False
    while True:
        if not at_end and len(buffer) <= _CLEAN_PIECE:
            block = handle.read(_CLEAN_PIECE)
            at_end = not block
            buffer += block
            continue
        feed = buffer.find("\f", 0, _CLEAN_PIECE)
        if feed >= 0:
            yield number, buffer[:feed], True
            number, buffer = number + 1, buffer[feed + 1 :]
        elif len(buffer) <= _CLEAN_PIECE:  # the end of the file
            yield number, buffer, True
            return
        else:
            end, _ = _piece_end(buffer, 0)
            yield number, buffer[:end], False
            buffer = buffer[end:]


def _text_encoding(path: Path) -> str:
    """The encoding :func:`_decode` would pick, found by decoding the file a block at a time."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
            _refuse_binary(head)
            if head.startswith(_UTF16_BOMS):
                return "utf-16"
            for encoding in _TEXT_ENCODINGS:
                handle.seek(0)
                if _decodes(handle, encoding):
                    return encoding
    except OSError as error:
        raise DocumentLoadError(f"cannot read: {error.strerror}") from error
    return "latin-1"


def _decodes(handle: BinaryIO, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        while block := handle.read(_CLEAN_PIECE):
            decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True
