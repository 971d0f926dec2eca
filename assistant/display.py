"""Text from documents, file names, conversations and models, made safe to show.

All of it is data. Before it reaches a terminal it loses escape sequences and control characters
(:func:`terminal_safe`), so nothing shown can clear the screen, write the clipboard or plant a
link; Rich and Textual get it as a ``Text`` (:func:`plain`), which is never parsed as markup, so
``paper [v2].pdf`` stays whole and ``notes[/].md`` is not a closing tag. The CLI and the TUI both
use these functions; JSON output keeps every character but escapes the controls (:func:`to_json`).
"""

from __future__ import annotations

import json
import re

from rich.text import Text

from rag.textclean import strip_controls

_SURROGATE = re.compile(r"[\ud800-\udfff]")
"""Undecodable bytes of a file name (``surrogateescape``), which cannot be printed as UTF-8."""
_UNESCAPED_BY_JSON = re.compile(r"[\x7f-\x9f\ud800-\udfff]")
"""What ``json.dumps(ensure_ascii=False)`` writes raw although a terminal would act on it."""


def terminal_safe(text: str, *, one_line: bool = False) -> str:
    """``text`` without terminal control; with ``one_line``, its whitespace runs as one space."""
    text = _SURROGATE.sub("\ufffd", strip_controls(text))
    return " ".join(text.split()) if one_line else text


def plain(text: str, *, one_line: bool = False, style: str = "") -> Text:
    """``text`` as a Rich ``Text``: shown as written, never read as markup."""
    return Text(terminal_safe(text, one_line=one_line), style=style)


def to_json(data: object, *, indent: int | None = 2) -> str:
    """``data`` as JSON, readable (CJK as is) and with every control escaped; ``indent=None``
    keeps it on one line (a server-sent event)."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    return _UNESCAPED_BY_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
