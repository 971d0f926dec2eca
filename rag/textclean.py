"""Cleaning of extracted page text, and detection of text that is garbage rather than language.

PDF text layers carry line-end hyphens, running headers and footers, ligature glyphs and, for CJK
fonts without a Unicode map, mojibake. Each would hurt retrieval, so it is fixed or flagged here
before chunking.

Text and metadata also carry terminal control: escape sequences (``ESC [2J`` clears the screen,
``OSC 52`` writes the clipboard, ``OSC 8`` plants a link) and other C0/C1 control characters.
:func:`strip_controls` removes them; it runs at ingest (pages, titles, headings) and again in
``assistant.display`` before anything is shown.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\u3000": " ",
    }
)
_SOFT_HYPHEN_BREAK = re.compile(r"[\x02\xad]\r?\n")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\r?\n(?=[a-z])")
_CJK = (
    r"\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
)
_CJK_PUNCT = r"\u3000-\u303f\uff01-\uff0f\uff1a-\uff20"
_SPACE_BETWEEN_CJK = re.compile(rf"(?<=[{_CJK}{_CJK_PUNCT}]) +(?=[{_CJK}{_CJK_PUNCT}])")
_DIGITS = re.compile(r"\d+")
_EDGE_LINES = 2
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing the screen
    r"|(?:\x1b[]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC, DCS...
    r"|\x1b[ -/]*[0-~]"  # two-character escapes (ESC c resets the terminal)
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F)."""
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_C1_CONTROL = re.compile(r"[\x80-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without escape sequences and control characters; tabs and newlines stay.

    A complete sequence goes whole; an unterminated one loses its ESC, which leaves readable,
    inert text (``[2J``). A lone surrogate (a broken UTF-16 text layer or title) becomes U+FFFD:
    SQLite could not store it, nor a terminal print it.
    """
    return _LONE_SURROGATE.sub("\ufffd", _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text)))


def clean_line(text: str | None) -> str | None:
    """A title, author or heading as one clean line; ``None`` when nothing is left."""
    line = " ".join(strip_controls(text or "").split())
    return line or None


def clean_page_text(text: str) -> str:
    """Join hyphenated line breaks, expand ligatures, normalise line ends and CJK spacing.

    Control characters go (:func:`strip_controls`); a lone C1 control, almost always a byte of
    another encoding decoded as Latin-1, becomes U+FFFD so :func:`garbage_ratio` still sees it.
    """
    text = text.translate(_LIGATURES)
    text = _SOFT_HYPHEN_BREAK.sub("", text)
    text = _HYPHEN_BREAK.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "")
    text = strip_controls(_C1_CONTROL.sub("\ufffd", _ESCAPE_SEQUENCE.sub("", text)))
    text = _fullwidth_to_ascii_alnum(text)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return "\n".join(lines).strip()


def _fullwidth_to_ascii_alnum(text: str) -> str:
    """Full-width digits and Latin letters (common in CJK PDFs) become ASCII, for search."""
    return "".join(
        chr(ord(char) - 0xFEE0) if "\uff10" <= char <= "\uff5a" and char.isalnum() else char
        for char in text
    )


def _line_key(line: str) -> str:
    return _DIGITS.sub("#", line.strip().lower())


def remove_running_lines(pages: Sequence[str]) -> list[str]:
    """Drop header/footer lines that repeat at the top or bottom of most pages.

    A line counts as repeated when, with digits masked (page numbers change), it sits among the
    first or last two lines of at least a quarter of the pages (and at least three of them); a
    quarter, not a half, because books alternate left and right running heads.
    """
    if len(pages) < 4:
        return list(pages)
    edge_counts: Counter[str] = Counter()
    for page in pages:
        lines = [line for line in page.split("\n") if line.strip()]
        edges = {_line_key(line) for line in lines[:_EDGE_LINES] + lines[-_EDGE_LINES:]}
        edge_counts.update(edges)
    threshold = max(3, len(pages) // 4)
    running = {key for key, count in edge_counts.items() if count >= threshold}
    if not running:
        return list(pages)
    return [_strip_edges(page, running) for page in pages]


def _strip_edges(page: str, running: set[str]) -> str:
    lines = page.split("\n")
    content = [index for index, line in enumerate(lines) if line.strip()]
    edges = set(content[:_EDGE_LINES] + content[-_EDGE_LINES:])
    kept = [
        line
        for index, line in enumerate(lines)
        if index not in edges or _line_key(line) not in running
    ]
    return "\n".join(kept).strip()


def garbage_ratio(text: str) -> float:
    """Share of non-space characters that look like encoding garbage rather than writing.

    Counted as garbage: private-use, unassigned, surrogate, replacement and control characters,
    Latin-1 symbols (U+0080-U+00BF), and accented Latin-1 letters when they outnumber a third of all
    Latin letters, which is what GBK or Shift-JIS bytes decoded as Latin-1 look like.
    """
    hard = latin1_letters = ascii_letters = total = 0
    for char in text:
        if char.isspace():
            continue
        total += 1
        code = ord(char)
        if char == "\ufffd" or unicodedata.category(char) in ("Co", "Cn", "Cs", "Cc"):
            hard += 1
        elif 0x80 <= code <= 0xBF:
            hard += 1
        elif 0xC0 <= code <= 0xFF:
            latin1_letters += 1
        elif char.isascii() and char.isalpha():
            ascii_letters += 1
    if total == 0:
        return 0.0
    garbage = hard
    if latin1_letters * 3 > latin1_letters + ascii_letters:
        garbage += latin1_letters
    return garbage / total


GARBAGE_THRESHOLD = 0.2
"""Above this :func:`garbage_ratio` a document's text is reported as unreadable, not indexed."""
