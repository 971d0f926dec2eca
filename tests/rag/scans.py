"""A scanned test set: pages of known English and Chinese text drawn as images the way a scanner
sees them (200 dpi, grey noise, a few degrees of rotation, one or two columns), wrapped in PDFs
without a text layer. Used by tests/rag/test_ocr.py and benchmarks/ocr.py.

Chinese glyphs come from Noto Sans CJK (the ``noto-cjk-sans-otc`` wheel of the dev extra);
:func:`cjk_font` is None where it is missing, and Chinese pages are then skipped by the caller.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

DPI = 200
PAGE_PX = (1654, 2339)
"""A4 at 200 dpi."""
MARGIN_PX = 150
GUTTER_PX = 90

ENGLISH = (
    "The harbour office keeps a ledger of every vessel that enters the bay after dark. "
    "Each entry records the name of the ship, the hour of arrival and the berth assigned "
    "by the night clerk. In the winter of the flood year the ledger filled faster than ever, "
    "because the river barges could no longer reach the inland warehouses and waited at anchor "
    "for the water to fall. The clerk noted that forty two barges carried grain, nineteen "
    "carried timber and seven carried coal for the paper mill on the northern shore. "
    "When the water finally dropped, the harbour master ordered the barges out in the order "
    "they had arrived, and the ledger shows that the last of them left eleven days later."
)
ENGLISH_COLUMNS = (
    "Soil samples from the orchard were taken at three depths along the southern fence. "
    "The upper layer held most of the roots and drained quickly after rain. "
    "Below it the clay kept water for several days, which the growers blamed for the "
    "poor apple harvest of the previous autumn.",
    "A drainage trench was dug along the lower slope in early spring. "
    "By midsummer the clay layer dried within two days of a storm, and the young trees "
    "planted beside the trench grew twice as fast as those planted on the upper terrace "
    "where no trench had been dug.",
)
CHINESE = (
    "小镇的图书馆每年春天都会整理一次旧书。管理员把受潮的书搬到院子里晾晒，"
    "再按照出版年代重新编号。去年整理时，他们在一个木箱里发现了三十多本手抄的地方志，"
    "记录了镇上两百年来的水利工程和集市变化。镇政府随后拨出专款，请大学的老师帮助修复这些手稿，"
    "并把扫描件放到网上供居民查阅。许多老人说，他们第一次在书里看到了自己祖父的名字。"
)


@dataclass(frozen=True)
class ScannedPage:
    """One page image and the text drawn on it, in reading order."""

    image: Image.Image
    text: str


def english_font(size: int) -> Any:
    """Noto Sans CJK's Latin letters, or Pillow's bundled font where Noto is missing (its word
    spaces are narrow: PP-OCRv4 then runs more words together)."""
    return cjk_font(size) or ImageFont.load_default(size=size)


def cjk_font(size: int) -> Any | None:
    """Noto Sans CJK SC from the dev extra's font wheel, or None where it is not installed."""
    try:
        collection = resources.files("noto_cjk_sans_otc") / "NotoSansCJK-Regular.ttc"
    except ModuleNotFoundError:
        return None
    for index in range(10):
        font = ImageFont.truetype(str(collection), size, index=index)
        if font.getname()[0] == "Noto Sans CJK SC":
            return font
    return None


def _wrap(text: str, font: Any, width: int, words: bool) -> list[str]:
    """Lines of ``text`` no wider than ``width`` pixels (by words, or by characters for CJK)."""
    pieces = text.split() if words else list(text)
    glue = " " if words else ""
    lines: list[str] = []
    line = ""
    for piece in pieces:
        candidate = f"{line}{glue}{piece}" if line else piece
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = piece
        else:
            line = candidate
    return [*lines, line] if line else lines


def _draw_column(
    draw: ImageDraw.ImageDraw, text: str, font: Any, left: int, width: int, words: bool
) -> list[str]:
    lines = _wrap(text, font, width, words)
    step = int(font.size * 1.6)
    for number, line in enumerate(lines):
        draw.text((left, MARGIN_PX + number * step), line, fill=20, font=font)
    return lines


def scan(image: Image.Image, rotation: float, noise: float, seed: int) -> Image.Image:
    """What a scanner makes of a clean page: slightly rotated, softened and grainy."""
    rotated = image.rotate(rotation, resample=Image.Resampling.BICUBIC, fillcolor=255)
    softened = rotated.filter(ImageFilter.GaussianBlur(0.6))
    grain = Image.effect_noise(softened.size, noise)
    rng = random.Random(seed)
    mixed = Image.blend(softened, grain, 0.18)
    pixels = mixed.load()
    assert pixels is not None
    for _ in range(mixed.width * mixed.height // 2000):  # dust specks
        pixels[rng.randrange(mixed.width), rng.randrange(mixed.height)] = 0
    return mixed


def text_page(
    text: str, font: Any, words: bool, rotation: float = 0.0, noise: float = 40.0, seed: int = 0
) -> ScannedPage:
    """One column of ``text``, scanned."""
    page = Image.new("L", PAGE_PX, 255)
    width = PAGE_PX[0] - 2 * MARGIN_PX
    lines = _draw_column(ImageDraw.Draw(page), text, font, MARGIN_PX, width, words)
    return ScannedPage(scan(page, rotation, noise, seed), ("\n" if words else "").join(lines))


def two_column_page(
    columns: tuple[str, str], font: Any, rotation: float = 0.0, noise: float = 40.0
) -> ScannedPage:
    """Two columns of English, scanned; the text is the left column, then the right."""
    page = Image.new("L", PAGE_PX, 255)
    draw = ImageDraw.Draw(page)
    width = (PAGE_PX[0] - 2 * MARGIN_PX - GUTTER_PX) // 2
    left = _draw_column(draw, columns[0], font, MARGIN_PX, width, True)
    right = _draw_column(draw, columns[1], font, MARGIN_PX + width + GUTTER_PX, width, True)
    return ScannedPage(scan(page, rotation, noise, 1), "\n".join(left + right))


def write_pdf(path: Path, pages: list[ScannedPage]) -> Path:
    """The pages as an image-only PDF at :data:`DPI` (what a scanner's PDF is)."""
    first, *rest = [page.image for page in pages]
    first.save(path, "PDF", resolution=DPI, save_all=True, append_images=rest)
    return path


def character_error_rate(expected: str, recognised: str) -> float:
    """Edit distance between the two texts over the length of ``expected``, whitespace ignored
    (line breaks and spaces between CJK characters are layout, not recognition)."""
    want = "".join(expected.split())
    return edit_distance(want, "".join(recognised.split())) / max(1, len(want))


def edit_distance(want: Sequence[str], got: Sequence[str]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning ``want`` into
    ``got`` (of characters, or of words)."""
    previous = list(range(len(got) + 1))
    for i, item in enumerate(want, 1):
        current = [i]
        for j, other in enumerate(got, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != other))
            )
        previous = current
    return previous[-1]
