"""Pages to chunks sized in tokens of the embedding model.

Text is cut into sentences (Latin ``. ! ?`` and Chinese ``。！？；``) inside paragraphs, then packed
greedily up to the token budget, preferring to close a chunk at a paragraph or a heading. Pages
flow into each other, so short pages merge; a chunk remembers its page range and the heading in
force where it starts. Consecutive chunks share whole trailing sentences up to the overlap budget.
The function is pure: the same document always gives the same chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.loaders import ExtractedDocument, OutlineEntry

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


@dataclass(frozen=True)
class _Unit:
    """A sentence (or a heading line) with where it sits."""

    text: str
    page: int
    heading: str | None
    starts_paragraph: bool
    is_heading: bool = False


def chunk_document(
    document: ExtractedDocument, token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> list[Chunk]:
    """Cut ``document`` into chunks of at most ``max_tokens`` tokens, sharing up to ``overlap``."""
    units, counts = _split_long(_units(document), token_offsets, max_tokens, overlap)
    labels = {page.number: page.label for page in document.pages}
    return [
        _make_chunk(index, units[start:end], counts[start:end], labels)
        for index, (start, end) in enumerate(_pack(units, counts, max_tokens, overlap))
    ]


def _units(document: ExtractedDocument) -> list[_Unit]:
    outline_by_page: dict[int, list[OutlineEntry]] = {}
    for entry in document.outline:
        outline_by_page.setdefault(entry.page, []).append(entry)
    heading: str | None = None
    units: list[_Unit] = []
    for page in document.pages:
        titles = [entry.title for entry in outline_by_page.get(page.number, []) if entry.title]
        if titles:
            heading = titles[0]
        known = {_normal(title) for title in titles}
        for paragraph in _paragraphs(page.text):
            title = _heading_of(paragraph, known)
            if title is not None:
                heading = title
                units.append(_Unit(paragraph, page.number, heading, True, is_heading=True))
                continue
            for position, sentence in enumerate(_sentences(paragraph)):
                units.append(_Unit(sentence, page.number, heading, position == 0))
    return units


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


def _paragraphs(text: str) -> list[str]:
    """Blank lines split paragraphs; so does a short line that ends a sentence, and a heading."""
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        typical = sorted(len(line) for line in lines)[len(lines) // 2]
        current: list[str] = []
        for line in lines:
            if _heading_of(line, set()) is not None:
                if current:
                    paragraphs.append(_join_lines(current))
                paragraphs.append(line)
                current = []
                continue
            current.append(line)
            if len(line) < 0.7 * typical and _PARAGRAPH_END.search(line):
                paragraphs.append(_join_lines(current))
                current = []
        if current:
            paragraphs.append(_join_lines(current))
    return paragraphs


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
    units: list[_Unit], token_offsets: TokenOffsets, max_tokens: int, overlap: int
) -> tuple[list[_Unit], list[int]]:
    """Cut sentences longer than the budget at token boundaries (tables, run-on text).

    Returns the units with their token counts.
    """
    spans_of = token_offsets([unit.text for unit in units])
    step = max(1, max_tokens - overlap)
    result: list[_Unit] = []
    counts: list[int] = []
    for unit, spans in zip(units, spans_of, strict=True):
        if len(spans) <= max_tokens:
            result.append(unit)
            counts.append(len(spans))
            continue
        for first in range(0, len(spans), step):
            window = spans[first : first + max_tokens]
            piece = unit.text[window[0][0] : window[-1][1]].strip()
            if piece:
                result.append(
                    _Unit(piece, unit.page, unit.heading, unit.starts_paragraph and first == 0)
                )
                counts.append(len(window))
            if first + max_tokens >= len(spans):
                break
    return result, counts


def _pack(
    units: Sequence[_Unit], counts: Sequence[int], max_tokens: int, overlap: int
) -> list[tuple[int, int]]:
    """Greedy packing into ``(start, end)`` unit ranges; a new range repeats a tail for overlap."""
    ranges: list[tuple[int, int]] = []
    start, size = 0, 0
    for index, (unit, count) in enumerate(zip(units, counts, strict=True)):
        closes_early = index > start and (
            (unit.is_heading and size >= max_tokens // 4)
            or (unit.starts_paragraph and size >= 0.8 * max_tokens)
        )
        if index > start and (size + count > max_tokens or closes_early):
            ranges.append((start, index))
            start, size = _overlap_start(units, counts, start, index, overlap, count, max_tokens)
        size += count
    if start < len(units):
        ranges.append((start, len(units)))
    return ranges


def _overlap_start(
    units: Sequence[_Unit],
    counts: Sequence[int],
    start: int,
    end: int,
    overlap: int,
    next_count: int,
    max_tokens: int,
) -> tuple[int, int]:
    """First unit of the next chunk: back up over whole sentences while they fit the overlap."""
    new_start, size = end, 0
    while (
        new_start - 1 > start
        and not units[end].is_heading
        and not units[new_start - 1].is_heading
        and size + counts[new_start - 1] <= overlap
        and size + counts[new_start - 1] + next_count <= max_tokens
    ):
        new_start -= 1
        size += counts[new_start]
    return new_start, size


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
    )
