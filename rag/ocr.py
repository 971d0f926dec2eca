"""Text of PDF pages that have none: rendered by PDFium, recognised by RapidOCR (PP-OCRv4).

RapidOCR runs PP-OCRv4's detection and recognition models (Chinese and English in one model,
shipped inside the wheel) on onnxruntime, so recognition is offline and needs no GPU. It is
loaded only when a page needs it, inside the parse worker, whose time and memory limits hold
for it like for any parser. Pages are rendered no larger than the detector reads them, and a
page carrying an image too large to decode is left alone, so an image bomb stays bounded.

What comes back is text in reading order: detected lines are grouped into lines and
paragraphs, and a page with two columns is read column by column.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

OcrMode = Literal["off", "auto", "always"]
"""off: never; auto: pages without a text layer; always: also pages whose text layer is garbage
or too sparse to be the page's real text."""

RENDER_DPI = 200
"""Resolution pages are rendered at for recognition (print is legible to PP-OCRv4 from ~150)."""
MAX_SIDE_PX = 2000
"""Longest side of a rendered page: RapidOCR scales larger images down to this before detection,
so rendering larger only costs memory (and a huge page is rendered this small)."""
MAX_IMAGE_PIXELS = 100_000_000
"""A page with an embedded image larger than this is not rendered: decoding it alone would take
hundreds of megabytes (an image bomb), for a picture no text recognition needs at that size."""
SPARSE_CHARACTERS = 40
"""In ``always`` mode, a page whose text layer has fewer characters than this is recognised too
(a scan with an invisible page number or a stamp as its only text)."""


_INK_SHARE = 1e-4
"""Share of dark pixels under which a rendered page is taken as blank."""


class OcrError(Exception):
    """Recognition could not run at all (engine missing or broken); the message says why."""


@dataclass(frozen=True)
class RecognisedPage:
    """The outcome of recognising one page: its text, or why it was not recognised."""

    number: int
    text: str
    skipped: str | None = None


def wants_ocr(text: str, garbage: bool, mode: OcrMode) -> bool:
    """Whether a page whose cleaned text layer is ``text`` is to be recognised."""
    if mode == "off":
        return False
    if not text and not garbage:
        return True
    return mode == "always" and (garbage or len(text) < SPARSE_CHARACTERS)


def recognise_pdf_pages(
    path: Path, password: str | None, numbers: Sequence[int]
) -> Iterator[RecognisedPage]:
    """Recognise the 1-based pages ``numbers`` of a PDF, in order, one at a time (a page is
    rendered only when the previous one has been handed on). Raises :class:`OcrError` when the
    engine cannot be loaded."""
    import pypdfium2 as pdfium

    try:
        document = pdfium.PdfDocument(str(path), password=password)
    except pdfium.PdfiumError as error:
        raise OcrError(f"PDFium cannot open the file to render it ({error})") from error
    try:
        for number in numbers:
            try:
                page = document[number - 1]
            except pdfium.PdfiumError:
                yield RecognisedPage(number, "", "PDFium cannot load the page")
                continue
            try:
                yield _recognise_page(page, number)
            except pdfium.PdfiumError:
                yield RecognisedPage(number, "", "PDFium cannot render the page")
            except MemoryError:
                yield RecognisedPage(number, "", _NO_MEMORY)
            except OcrError:
                raise
            except Exception as error:  # onnxruntime's errors (a failed allocation among them)
                yield RecognisedPage(number, "", _engine_failure(error))
            finally:
                page.close()
    finally:
        document.close()


_NO_MEMORY = "recognising it needs more than parse_memory_mb"


def _engine_failure(error: Exception) -> str:
    """One line for an error the OCR engine raised on a page."""
    if "bad_alloc" in str(error):
        return _NO_MEMORY
    lines = str(error).strip().splitlines()
    return f"OCR failed ({type(error).__name__}: {lines[-1] if lines else ''})"


def _recognise_page(page: Any, number: int) -> RecognisedPage:
    import pypdfium2.raw as pdfium_c

    for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4):
        width, height = image.get_px_size()
        if width * height > MAX_IMAGE_PIXELS:
            return RecognisedPage(number, "", f"an image of {width}x{height} pixels")
    width_pt, height_pt = page.get_size()
    scale = min(RENDER_DPI / 72, MAX_SIDE_PX / max(width_pt, height_pt, 1.0))
    bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=False)
    try:
        pixels = bitmap.to_numpy()
        if (pixels < 128).mean() < _INK_SHARE:  # a blank page: detection alone takes seconds
            return RecognisedPage(number, "")
        return RecognisedPage(number, recognise_image(pixels))
    finally:
        bitmap.close()


def recognise_image(pixels: Any) -> str:
    """The text of a page image (a NumPy array, grey or BGR), in reading order. The angle
    classifier is not run: it only turns lines upside down, and costs time on every line."""
    result, _ = _engine()(pixels, use_cls=False)
    boxes = [_box(points, _spaced(text)) for points, text, _score in result or () if text.strip()]
    return layout_text(boxes)


_MISSED_SPACE = re.compile(r"(?<=[a-z][,;:])(?=[A-Za-z])|(?<=[a-z][.!?])(?=[A-Z][a-z])")


def _spaced(text: str) -> str:
    """PP-OCRv4 often drops the space after a comma or a full stop in English ("grain,nineteen",
    "clerk.In"): put it back where a word follows (not inside "3.5" or "example.com")."""
    return _MISSED_SPACE.sub(" ", text)


@functools.cache
def _engine() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR

        return RapidOCR()
    except Exception as error:  # a missing or broken engine is reported, not fatal
        raise OcrError(
            f"the OCR engine could not be loaded ({type(error).__name__}: {error})"
        ) from error


@dataclass(frozen=True)
class TextBox:
    """One detected line of text: its corners (clockwise from top left) and what it says."""

    corners: tuple[tuple[float, float], ...]
    text: str

    @property
    def slope(self) -> float:
        (x0, y0), (x1, y1) = self.corners[0], self.corners[1]
        return (y1 - y0) / (x1 - x0) if x1 > x0 else 0.0


def _box(points: Sequence[Sequence[float]], text: str) -> TextBox:
    return TextBox(tuple((float(x), float(y)) for x, y in points), text.strip())


@dataclass(frozen=True)
class _Placed:
    """A box in the page's frame straightened by its skew."""

    left: float
    right: float
    top: float
    bottom: float
    text: str

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2

    @property
    def height(self) -> float:
        return self.bottom - self.top


def layout_text(boxes: Sequence[TextBox]) -> str:
    """Boxes as text: columns one after another, lines top to bottom, a blank line between
    paragraphs. A slightly rotated scan is straightened first by the boxes' median slope, so
    the pieces of one line stay one line."""
    if not boxes:
        return ""
    placed = _straightened(boxes)
    blocks = _column_blocks(placed)
    return "\n\n".join(text for block in blocks if (text := _block_text(block)))


def _straightened(boxes: Sequence[TextBox]) -> list[_Placed]:
    angle = math.atan(statistics.median(box.slope for box in boxes))
    cos, sin = math.cos(-angle), math.sin(-angle)
    placed = []
    for box in boxes:
        xs = [x * cos - y * sin for x, y in box.corners]
        ys = [x * sin + y * cos for x, y in box.corners]
        placed.append(_Placed(min(xs), max(xs), min(ys), max(ys), box.text))
    return placed


def _column_blocks(boxes: list[_Placed]) -> list[list[_Placed]]:
    """The page cut into blocks read in order: with a gutter, the left column's lines, then the
    right's, between lines that span both (a title, a footer)."""
    gutter = _gutter(boxes)
    ordered = sorted(boxes, key=lambda box: box.top)
    if gutter is None:
        return [ordered]
    blocks: list[list[_Placed]] = []
    left: list[_Placed] = []
    right: list[_Placed] = []
    for box in ordered:
        if box.left < gutter < box.right:
            blocks += [side for side in (left, right) if side]
            blocks.append([box])
            left, right = [], []
        else:
            (left if box.right <= gutter else right).append(box)
    blocks += [side for side in (left, right) if side]
    return blocks


_MIN_COLUMN_LINES = 3
_MIN_COLUMN_WIDTH = 0.25
"""Median line width of a column, as a share of the text's width."""


def _gutter(boxes: list[_Placed]) -> float | None:
    """An x between two columns: in the middle of the text, crossed by few boxes (titles), with
    lines of both sides beside each other and as wide as columns of text are (a form's labels
    and values are not columns). None for a one-column page."""
    start, end = min(box.left for box in boxes), max(box.right for box in boxes)
    width = end - start
    best: tuple[int, float] | None = None
    for box in boxes:
        x = box.right + 1
        if not start + 0.3 * width <= x <= start + 0.7 * width:
            continue
        crossing = sum(1 for other in boxes if other.left < x < other.right)
        if best is None or crossing < best[0]:
            best = (crossing, x)
    if best is None or best[0] > max(2, len(boxes) // 10):
        return None
    x = best[1]
    left = [box for box in boxes if box.right <= x]
    right = [box for box in boxes if box.left >= x]
    beside = sum(1 for box in left if any(_same_line(box, other) for other in right))
    if min(len(left), len(right), beside) < _MIN_COLUMN_LINES:
        return None
    narrowest = min(
        statistics.median(box.right - box.left for box in side) for side in (left, right)
    )
    return x if narrowest >= _MIN_COLUMN_WIDTH * width else None


def _same_line(one: _Placed, other: _Placed) -> bool:
    return abs(one.middle - other.middle) < 0.5 * min(one.height, other.height)


def _block_text(block: list[_Placed]) -> str:
    lines: list[list[_Placed]] = []
    for box in sorted(block, key=lambda box: box.middle):
        if lines and _same_line(lines[-1][-1], box):
            lines[-1].append(box)
        else:
            lines.append([box])
    height = statistics.median(box.height for box in block)
    parts: list[str] = []
    previous_bottom: float | None = None
    for line in lines:
        top = min(box.top for box in line)
        if previous_bottom is not None:
            parts.append("\n\n" if top - previous_bottom > 0.8 * height else "\n")
        parts.append(_joined(sorted(line, key=lambda box: box.left)))
        previous_bottom = max(box.bottom for box in line)
    return "".join(parts)


_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _joined(line: list[_Placed]) -> str:
    """A line's boxes left to right: a space between them, none between two CJK characters."""
    text = line[0].text
    for box in line[1:]:
        gap = "" if _CJK.match(text[-1]) and _CJK.match(box.text[0]) else " "
        text += gap + box.text
    return text
