"""Citation markers in an answer, checked against the passages the model was actually shown.

Models write ``[1]``, ``[1, 3]``, ``[2-4]`` or, in Chinese, ``【1】`` / ``［1，2］``. Numbers that
match no passage are dropped rather than shown as a source the answer never had.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from assistant.events import Source

_MARKER = re.compile(r"[\[【［]\s*(\d+(?:\s*(?:[,，、;；]|[-–~]|\s)\s*\d+)*)\s*[\]】］]")
_PART = re.compile(r"(\d+)(?:\s*[-–~]\s*(\d+))?")
_MAX_RANGE = 20


def cited_numbers(answer: str) -> list[int]:
    """Every number cited in ``answer``, in order of first appearance, without repeats.

    A backwards or huge range ("[2009-2010]") is not a citation and adds nothing.
    """
    seen: dict[int, None] = {}
    for marker in _MARKER.finditer(answer):
        for part in _PART.finditer(marker.group(1)):
            start = int(part.group(1))
            end = int(part.group(2)) if part.group(2) else start
            if start <= end <= start + _MAX_RANGE:
                seen.update(dict.fromkeys(range(start, end + 1)))
    return list(seen)


def cited_sources(answer: str, evidence: Sequence[Source]) -> list[Source]:
    """The passages ``answer`` cites, in citation order; unknown numbers are left out."""
    by_number = {source.number: source for source in evidence}
    return [by_number[n] for n in cited_numbers(answer) if n in by_number]
