"""Word, HTML and EPUB documents in, as Markdown-shaped text the chunker already understands.

Each format is read with the library made for it (python-docx, BeautifulSoup over lxml,
ebooklib) and written out as paragraphs with its headings as ``#`` lines, so the chunker keeps
them as the passages' heading paths. A Word or HTML file is one "page" (cited by its heading);
an EPUB is one page per chapter of its reading order, with the chapter's title in the outline, so
a passage is cited by chapter. DOCX and EPUB files are zip archives: their listed sizes are
checked before anything is inflated, so a zip bomb is refused by name instead of filling memory.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from rag.loaders import DocumentLoadError, ExtractedDocument, ExtractedPage, OutlineEntry

MAX_INFLATED_BYTES = 256 << 20
"""Largest total size an archive's members may inflate to."""
MAX_RATIO = 200
"""Largest compression ratio of one member: text and XML reach 10-20, bombs thousands."""

_BLOCKS = frozenset(
    {"p", "li", "pre", "blockquote", "dt", "dd", "td", "th", "figcaption", "caption", "address"}
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_INVISIBLE = frozenset({"script", "style", "template", "noscript", "head", "svg", "math"})


def load_markup(path: Path) -> ExtractedDocument:
    """Read a .docx, .html/.htm or .epub file; raise :class:`DocumentLoadError` saying why not."""
    suffix = path.suffix.lower()
    if suffix == ".docx":
        return _load_word(path)
    if suffix == ".epub":
        return _load_epub(path)
    try:
        markup = path.read_bytes()
    except OSError as error:
        raise DocumentLoadError(f"cannot read: {error.strerror}") from error
    title, text = html_text(markup)
    return ExtractedDocument((ExtractedPage(1, text),), title=title or path.stem, extractor="html")


def html_text(markup: bytes) -> tuple[str | None, str]:
    """The page's title and its visible text: headings as ``#`` lines, blocks as paragraphs."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "lxml")
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    paragraphs: list[str] = []
    _blocks(soup, paragraphs)
    return title or None, "\n\n".join(paragraphs)


def _blocks(element: Any, paragraphs: list[str]) -> None:
    """Append the text of ``element``'s blocks in reading order; loose text between blocks
    becomes a paragraph of its own."""
    from bs4 import NavigableString, Tag

    loose: list[str] = []

    def flush() -> None:
        if text := " ".join(" ".join(loose).split()):
            paragraphs.append(text)
        loose.clear()

    for child in element.children:
        if isinstance(child, Tag):
            name = child.name.lower()
            if name in _INVISIBLE:
                continue
            if name in _HEADINGS or name in _BLOCKS:
                flush()
                text = " ".join(child.get_text(" ", strip=True).split())
                if text:
                    level = _HEADINGS.get(name)
                    paragraphs.append(f"{'#' * level} {text}" if level else text)
            elif name == "br":
                loose.append(" ")
            else:
                inline = (
                    child.get_text(" ", strip=True) if not child.find(_block_or_heading) else None
                )
                if inline is not None:
                    loose.append(inline)
                else:
                    flush()
                    _blocks(child, paragraphs)
        elif isinstance(child, NavigableString) and type(child) is NavigableString:
            loose.append(str(child))  # comments, CDATA and doctypes are subclasses: not text
    flush()


def _block_or_heading(tag: Any) -> bool:
    name = tag.name.lower()
    return name in _BLOCKS or name in _HEADINGS


def _check_archive(path: Path, kind: str) -> None:
    """Refuse an archive that is not one, or whose members would inflate out of bounds."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise DocumentLoadError(
            f"unreadable {kind} file (not a valid zip archive: {error})"
        ) from error
    total = sum(member.file_size for member in members)
    if total > MAX_INFLATED_BYTES:
        raise DocumentLoadError(
            f"{kind} file inflates to {total >> 20} MB (a zip bomb?); not opened"
        )
    for member in members:
        ratio = member.file_size // max(1, member.compress_size)
        if member.file_size > 1 << 20 and ratio > MAX_RATIO:
            raise DocumentLoadError(
                f"{kind} member {member.filename!r} is compressed {ratio}:1 (a zip bomb?); "
                "not opened"
            )


def _load_word(path: Path) -> ExtractedDocument:
    import docx
    from docx.table import Table

    _check_archive(path, "Word")
    try:
        document = docx.Document(str(path))
        paragraphs: list[str] = []
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for row in block.rows:
                    cells = [" ".join(cell.text.split()) for cell in row.cells]
                    if any(cells):
                        paragraphs.append(" | ".join(cells))
                continue
            text = " ".join(block.text.split())
            if text:
                level = _word_heading_level(block.style.name if block.style is not None else "")
                paragraphs.append(f"{'#' * level} {text}" if level else text)
        title = document.core_properties.title or None
    except DocumentLoadError:
        raise
    except Exception as error:  # python-docx raises KeyError, ValueError, lxml errors on bad parts
        raise DocumentLoadError(f"unreadable Word file: {type(error).__name__}: {error}") from error
    text = "\n\n".join(paragraphs)
    return ExtractedDocument((ExtractedPage(1, text),), title=title or path.stem, extractor="docx")


def _word_heading_level(style: str) -> int:
    """1-6 for Word's "Title" and "Heading N" styles, 0 for body text."""
    if style == "Title":
        return 1
    if style.startswith("Heading "):
        number = style.removeprefix("Heading ").strip()
        if number.isdigit():
            return min(6, max(1, int(number)))
    return 0


def _load_epub(path: Path) -> ExtractedDocument:
    import ebooklib
    from ebooklib import epub

    _check_archive(path, "EPUB")
    try:
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
        pages: list[ExtractedPage] = []
        outline: list[OutlineEntry] = []
        for item_id, _linear in book.spine:
            item = book.get_item_with_id(item_id)
            if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
                continue
            chapter_title, text = html_text(item.get_content())
            if not text.strip():
                continue
            number = len(pages) + 1
            pages.append(ExtractedPage(number, text))
            heading = _first_heading(text) or chapter_title
            if heading:
                outline.append(OutlineEntry(number, heading))
        titles = book.get_metadata("DC", "title")
        authors = book.get_metadata("DC", "creator")
    except DocumentLoadError:
        raise
    except Exception as error:  # ebooklib raises its own, KeyError and lxml errors on bad parts
        raise DocumentLoadError(f"unreadable EPUB file: {type(error).__name__}: {error}") from error
    return ExtractedDocument(
        tuple(pages),
        title=(titles[0][0] if titles else None) or path.stem,
        author=authors[0][0] if authors else None,
        outline=tuple(outline),
        extractor="epub",
    )


def _first_heading(text: str) -> str | None:
    first = text.split("\n\n", 1)[0]
    return first.lstrip("#").strip() if first.startswith("#") else None
