"""How common a word is in general use, from the word lists the ``wordfreq`` package ships.

A question's rare word ("uveal melanoma", "clear aligners", "submental fat") names what the
answer must be about as surely as a name does, while a common one ("fuel", "cost", even
"counterfeiting") may be the reader's paraphrase of what the document says.

The lists are read directly, in their documented format (gzipped msgpack: a header, then one
alphabetical list of words per centibel of frequency, most frequent first): importing wordfreq
itself takes 0.6 s of a command's start. Its "small" list (words used at least once per million)
answers most lookups and loads in 15 ms; the "large" one (down to once per hundred million, 0.15 s)
is read only for a word the small one lacks.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import importlib.util
from pathlib import Path

import msgpack

WORDLISTS = ("small", "large")


def zipf(word: str, language: str, floor: float = 0.0) -> float:
    """The word's Zipf frequency (log10 of uses per billion words): 7 for "the", 3.6 for
    "overhaul", 1.7 for "uveal"; 0 for a word rarer than the lists hold or than ``floor``, or a
    language without lists. A caller asking only "rarer than x?" passes ``floor=x``: the words
    rarer than that, two thirds of the large list, are then not read."""
    word = word.lower()
    for wordlist in WORDLISTS:
        for centibels, words in enumerate(_buckets(language, wordlist, floor)):
            position = bisect.bisect_left(words, word)
            if position < len(words) and words[position] == word:
                return 9.0 - centibels / 100
    return 0.0


@functools.cache
def _buckets(language: str, wordlist: str, floor: float) -> list[list[str]]:
    """The list's words by frequency down to ``floor``: bucket ``i`` holds the words of -``i``
    centibels (Zipf 9 - i/100)."""
    path = _wordlist_path(language, wordlist)
    if path is None:
        return []
    with gzip.open(path, "rb") as packed:
        unpacker = msgpack.Unpacker(packed, raw=False)
        count = unpacker.read_array_header() - 1
        header = unpacker.unpack()
        if header != {"format": "cB", "version": 1}:
            raise ValueError(f"{path}: not a word list of a known format ({header!r})")
        wanted = min(count, round((9.0 - floor) * 100) + 1)
        return [unpacker.unpack() for _ in range(wanted)]


def _wordlist_path(language: str, wordlist: str) -> Path | None:
    """The list's file inside the installed wordfreq, found without importing the package."""
    spec = importlib.util.find_spec("wordfreq")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    path = folder / f"{wordlist}_{language}.msgpack.gz"
    return path if path.exists() else None
