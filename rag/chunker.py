"""Pages to chunks sized in tokens of the embedding model.

Text is cut into sentences (Latin ``. ! ?`` and Chinese ``。！？；``) inside paragraphs, then packed
greedily up to the token budget, preferring to close a chunk at a paragraph or a heading. Pages
flow into each other, so short pages merge; a chunk remembers its page range, the heading in
force where it starts and the path of headings above it ("5 Statistics > 5.2 Sample size"),
which search matches with the passage. Consecutive chunks share whole trailing sentences up to
the overlap budget.
The function is pure: the same document always gives the same chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice

from rag.loaders import ExtractedDocument, ExtractedPage, OutlineEntry

TokenOffsets = Callable[[list[str]], list[list[tuple[int, int]]]]
"""Character spans of the tokens of each text, e.g. :meth:`rag.embedder.Embedder.token_offsets`."""

_CJK_CHAR = re.compile(
    r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\uff01-\uff0f\uff1a-\uff20]"
)
"""CJK characters and punctuation: no space is put between two of them when lines are joined."""
_SENTENCE = re.compile(
    r".+?(?:[。！？；][”」』）]*"  # a CJK sentence end needs no following space
    r"|[.!?][\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9\u00c0-\u024f])"  # Latin: space, then a capital
    r"|$)",
    re.DOTALL,
)
_BLANK_LINES = re.compile(r"\n\s*\n")
_TOKENIZE_WINDOW = 512
"""Sentences tokenized per call: enough to keep the tokenizer busy, few enough to stay small."""
_PARAGRAPH_END = re.compile(r"[.!?:。！？；…\"”」)]$")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(\S.*)$")
_NUMBERED_HEADING = re.compile(
    r"^(?:(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]+\.|Chapter\s+\d+:?|Section\s+\d+:?)\s+[A-Z\u00c0-\u024f]"
    r"[^.!?:;]{1,60}|第[一二三四五六七八九十百千\d]+[章节篇部编]\s*\S.{0,40})$"
)


@dataclass(frozen=True)
class Chunk:
    index: int
    text: str
    page_start: int
    page_end: int
    heading: str | None
    page_label: str | None
    tokens: int
    heading_path: str | None = None
    """The headings above the passage, outermost first, joined by " > "."""
    ocr: bool = False
    """Some of its text was recognised from a page image (OCR), so it may hold misreadings."""


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a heading line) with where it sits."""

    text: str
    page: int
    heading: str | None
    starts_paragraph: bool
    is_heading: bool = False
    heading_path: str | None = None
    ocr: bool = False


def chunk_document(
    document: ExtractedDocument, token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> list[Chunk]:
    """Cut ``document`` into chunks of at most ``max_tokens`` tokens, sharing up to ``overlap``."""
    return list(chunk_pages(document.pages, document.outline, token_offsets, max_tokens, overlap))


def chunk_pages(
    pages: Iterable[ExtractedPage],
    outline: Sequence[OutlineEntry],
    token_offsets: TokenOffsets,
    max_tokens: int,
    overlap: int,
) -> Iterator[Chunk]:
    """The chunks of a document given page by page (parts of one page may come one after the
    other with the same number), each as soon as it is complete.

    Sentences stream through tokenizing (``_TOKENIZE_WINDOW`` at a time) and packing, so memory
    stays bounded however long the document is: a caller that consumes the chunks as they come
    never holds the document or all its chunks.
    """
    labels: dict[int, str | None] = {}
    counted = _split_long(_units(pages, outline, labels), token_offsets, max_tokens, overlap)
    for index, packed in enumerate(_pack(counted, max_tokens, overlap)):
        yield _make_chunk(
            index, [unit for unit, _ in packed], [count for _, count in packed], labels
        )


def _units(
    pages: Iterable[ExtractedPage], outline: Sequence[OutlineEntry], labels: dict[int, str | None]
) -> Iterator[_Unit]:
    """The sentences and headings of the pages in order; records each page's label."""
    outline_by_page: dict[int, list[OutlineEntry]] = {}
    for entry in outline:
        outline_by_page.setdefault(entry.page, []).append(entry)
    heading: str | None = None
    path = _HeadingPath()
    known: set[str] = set()
    for page in pages:
        if page.number not in labels:  # the first part of a page
            labels[page.number] = page.label
            titles = [entry.title for entry in outline_by_page.get(page.number, []) if entry.title]
            if titles:
                heading = titles[0]
                path.enter(heading, _level(heading))
            known = {_normal(title) for title in titles}
        for paragraph in _paragraphs(page.text):
            title = _heading_of(paragraph, known)
            if title is not None:
                heading = title
                path.enter(title, _level(paragraph))
                yield _Unit(paragraph, page.number, heading, True, True, path.text(), page.ocr)
                continue
            for position, sentence in enumerate(_sentences(paragraph)):
                yield _Unit(
                    sentence, page.number, heading, position == 0, False, path.text(), page.ocr
                )


class _HeadingPath:
    """The headings in force, outermost first: a new heading closes those at its level or below."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, title: str, level: int) -> None:
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        if not self._open or self._open[-1][1] != title:
            self._open.append((level, title))

    def text(self) -> str | None:
        return " > ".join(title for _, title in self._open) or None


def _level(heading: str) -> int:
    """Depth of a heading: ``#`` count in Markdown, number parts in ``5.2.1``, else 1."""
    markdown = re.match(r"^(#{1,6})\s", heading)
    if markdown:
        return len(markdown.group(1))
    numbered = re.match(r"^(\d{1,2}(?:\.\d{1,2})*)\.?\s", heading)
    if numbered:
        return numbered.group(1).count(".") + 1
    return 1


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _heading_of(paragraph: str, outline_titles: set[str]) -> str | None:
    if "\n" in paragraph or len(paragraph) > 100:
        return None
    markdown = _MARKDOWN_HEADING.match(paragraph)
    if markdown:
        return markdown.group(1).strip()
    if _NUMBERED_HEADING.match(paragraph) or _normal(paragraph) in outline_titles:
        return paragraph.strip()
    return None


def _paragraphs(text: str) -> Iterator[str]:
    """Blank lines split paragraphs; so does a short line that ends a sentence, and a heading."""
    for block in _blocks(text):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        typical = sorted(len(line) for line in lines)[len(lines) // 2]
        current: list[str] = []
        for line in lines:
            if _heading_of(line, set()) is not None:
                if current:
                    yield _join_lines(current)
                yield line
                current = []
                continue
            current.append(line)
            if len(line) < 0.7 * typical and _PARAGRAPH_END.search(line):
                yield _join_lines(current)
                current = []
        if current:
            yield _join_lines(current)


def _blocks(text: str) -> Iterator[str]:
    """The text between blank lines, one block at a time (``re.split`` would copy it all)."""
    start = 0
    for blank in _BLANK_LINES.finditer(text):
        yield text[start : blank.start()]
        start = blank.end()
    yield text[start:]


def _join_lines(lines: Sequence[str]) -> str:
    text = lines[0]
    for line in lines[1:]:
        text += _separator(text, line) + line
    return text


def _separator(left: str, right: str) -> str:
    """No space between two CJK characters, one space elsewhere."""
    if left and right and _CJK_CHAR.match(left[-1]) and _CJK_CHAR.match(right[0]):
        return ""
    return " "


def _sentences(paragraph: str) -> list[str]:
    return [
        match.group().strip() for match in _SENTENCE.finditer(paragraph) if match.group().strip()
    ]


def _split_long(
    units: Iterable[_Unit], token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> Iterator[tuple[_Unit, int]]:
    """Each unit with its token count, sentences longer than the budget cut at token boundaries
    (tables, run-on text). Tokenizes ``_TOKENIZE_WINDOW`` units per call."""
    step = max(1, max_tokens - overlap)
    iterator = iter(units)
    while window_units := list(islice(iterator, _TOKENIZE_WINDOW)):
        spans_of = token_offsets([unit.text for unit in window_units])
        for unit, spans in zip(window_units, spans_of, strict=True):
            if len(spans) <= max_tokens:
                yield unit, len(spans)
                continue
            for first in range(0, len(spans), step):
                window = spans[first : first + max_tokens]
                piece = unit.text[window[0][0] : window[-1][1]].strip()
                if piece:
                    first_piece = unit.starts_paragraph and first == 0
                    yield replace(unit, text=piece, starts_paragraph=first_piece), len(window)
                if first + max_tokens >= len(spans):
                    break


def _pack(
    counted: Iterable[tuple[_Unit, int]], max_tokens: int, overlap: int
) -> Iterator[list[tuple[_Unit, int]]]:
    """Greedy packing of counted units into chunks; a new chunk repeats a tail for overlap."""
    current: list[tuple[_Unit, int]] = []
    size = 0
    for unit, count in counted:
        closes_early = bool(current) and (
            (unit.is_heading and size >= max_tokens // 4)
            or (unit.starts_paragraph and size >= 0.8 * max_tokens)
        )
        if current and (size + count > max_tokens or closes_early):
            yield current
            current = _overlap_tail(current, unit, count, overlap, max_tokens)
            size = sum(tail_count for _, tail_count in current)
        current.append((unit, count))
        size += count
    if current:
        yield current


def _overlap_tail(
    previous: list[tuple[_Unit, int]],
    next_unit: _Unit,
    next_count: int,
    overlap: int,
    max_tokens: int,
) -> list[tuple[_Unit, int]]:
    """Start of the next chunk: whole sentences backed up over from the end of ``previous``
    while they fit the overlap (never its first unit, never across a heading)."""
    if next_unit.is_heading:
        return []
    keep, size = len(previous), 0
    while (
        keep - 1 > 0
        and not previous[keep - 1][0].is_heading
        and size + previous[keep - 1][1] <= overlap
        and size + previous[keep - 1][1] + next_count <= max_tokens
    ):
        keep -= 1
        size += previous[keep][1]
    return previous[keep:]


def _make_chunk(
    index: int, units: Sequence[_Unit], counts: Sequence[int], labels: dict[int, str | None]
) -> Chunk:
    text = units[0].text
    for previous, unit in zip(units, units[1:], strict=False):
        separator = "\n\n" if unit.starts_paragraph else _separator(previous.text, unit.text)
        text += separator + unit.text
    return Chunk(
        index=index,
        text=text,
        page_start=units[0].page,
        page_end=units[-1].page,
        heading=units[0].heading,
        page_label=labels.get(units[0].page),
        tokens=sum(counts),
        heading_path=units[0].heading_path,
        ocr=any(unit.ocr for unit in units),
    )
