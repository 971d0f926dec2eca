"""The terms a question cannot be answered without: names, identifiers, numbers, periods, quotes.

"What was Tesla's inventory in Q3 2022?" asked of a library of Apple filings finds Apple's
inventory passages, and a cosine threshold happily accepts them: the question and the passages
are about the same thing, except for the one word that matters. Here we pick out the words a
correct answer must be about, so that the library can check that the documents mention them:

- English: quoted phrases; runs of capitalised words that do not start the question ("Arnold
  Palmer Regional Airport"); acronyms; anything with a digit (years, quarters, models such as
  PA-22-150, registrations, NCT numbers);
- Chinese: names of people, places, organisations and other proper nouns as jieba's
  part-of-speech tagger marks them, Latin words and numbers in the question, quoted phrases.

The extraction is deliberately narrow: a term that is not there only means we fall back to the
score threshold, while a common word taken for a name would refuse answerable questions.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from rag.relevance import mainly_cjk

_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,60})[\"“”]|《([^》]{1,40})》|「([^」]{1,40})」")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’&.\-/]*")
_HAS_DIGIT = re.compile(r"\d")
_PERIOD_CODE = re.compile(r"^(?:Q[1-4]|H[12]|FY|FY\d{2,4}|\d{1,2}(?:st|nd|rd|th))$", re.IGNORECASE)
"""Quarters, halves, fiscal years and ordinals: documents write them out ("three months ended"),
so their literal absence proves nothing."""
_NUMBER_WITH_UNIT = re.compile(r"\d[\d,.]*-[a-z]{3,}", re.IGNORECASE)
"""``85-year-old``, ``1,500-foot``: a quantity phrased the question's way, not the document's."""
_COMMON_CAPITALISED = frozenset(
    """a an the what which who whom whose when where why how is are was were do does did can could
    should would will shall may might must has have had please tell explain describe list name
    give summarize summarise compare according in on at of for to from by with and or but if i we
    you my our your this that these those there it its during after before between under over
    about into per vs mr mrs ms dr
    """.split()
)
"""Capitalised words that say nothing about *which* subject (question words, English titles)."""
_CHINESE_PROPER = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz", "eng"})
_TRIM = ".,;:!?'’\")(“”"
_tagger_lock = threading.Lock()
_tagger: Any = None


def salient_terms(question: str) -> list[str]:
    """The question's salient terms, in order of appearance, unique (case-insensitive)."""
    terms = [
        next(group for group in match.groups() if group) for match in _QUOTED.finditer(question)
    ]
    unquoted = _QUOTED.sub(" ", question)
    terms += _chinese_terms(unquoted) if mainly_cjk(unquoted) else _english_terms(unquoted)
    unique: dict[str, str] = {}
    for term in terms:
        cleaned = term.strip(_TRIM + " ")
        if cleaned and cleaned.lower() not in unique:
            unique[cleaned.lower()] = cleaned
    return list(unique.values())


def _english_terms(question: str) -> list[str]:
    terms: list[str] = []
    run: list[str] = []
    for sentence in re.split(r"(?<=[.?!])\s+", question):
        words = [match.group().strip(_TRIM) for match in _WORD.finditer(sentence)]
        for position, word in enumerate(words):
            if _is_salient_word(word, first=position == 0):
                run.append(_possessive(word))
                continue
            if run:
                terms.append(" ".join(run))
                run = []
        if run:
            terms.append(" ".join(run))
            run = []
    return terms


def _is_salient_word(word: str, *, first: bool) -> bool:
    if not word:
        return False
    lower = _possessive(word).lower()
    if _PERIOD_CODE.match(word) or _NUMBER_WITH_UNIT.match(word):
        return False
    if _HAS_DIGIT.search(word):
        return True
    if lower in _COMMON_CAPITALISED:
        return False
    if len(word) >= 2 and word.isupper():
        return True  # an acronym: NTSB, FAA, GVHD
    return word[0].isupper() and not first


def _possessive(word: str) -> str:
    return re.sub(r"['’]s$", "", word)


def _chinese_terms(question: str) -> list[str]:
    terms: list[str] = []
    for word, flag in _tag(question):
        word = word.strip()
        if len(word) < 2 and not _HAS_DIGIT.search(word):
            continue
        if flag in _CHINESE_PROPER or (flag in {"m", "t"} and _HAS_DIGIT.search(word)):
            terms.append(word)
    return terms


def _tag(text: str) -> list[tuple[str, str]]:
    """jieba's part-of-speech tags, with its dictionary loaded once and quietly."""
    global _tagger
    with _tagger_lock:
        if _tagger is None:
            import logging

            import jieba
            import jieba.posseg

            jieba.setLogLevel(logging.WARNING)
            _tagger = jieba.posseg
    return [(pair.word, pair.flag) for pair in _tagger.cut(text)]
