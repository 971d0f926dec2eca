"""The terms a question cannot be answered without: names, identifiers, numbers, quotes.

"What was Tesla's inventory in Q3 2022?" asked of a library of Apple filings finds Apple's
inventory passages, and a cosine threshold happily accepts them: the question and the passages
are about the same thing, except for the one word that matters. Here we pick out the words a
correct answer must be about, so that the library can check that the documents mention them:

- English: capitalised words that do not start the question (names: "Tallahassee", "Arnold",
  "Palmer"); acronyms; anything with a digit of three or more characters (years, models such as
  PA-22-150 or "Cessna 182", registrations, NCT numbers); months with their year ("July 2008");
  quoted phrases;
- Chinese: names of people, places, organisations and other proper nouns as jieba's
  part-of-speech tagger marks them, Latin words and numbers in the question, quoted phrases.

Two kinds, judged differently by :meth:`rag.library.Library.judge`: an *identifier* (a number, a
model, a code, a quoted phrase, a period) is written the same way wherever it appears, so its
absence is proof; a *name* may be written another way ("FL" for "Florida", "Mexico" for
"Mexican": :mod:`rag.aliases`), so a name is only missing when no other form of it is there
either. The extraction is deliberately
narrow: a term missed only means the score threshold decides, while a common word taken for a
name would refuse answerable questions.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rag import aliases, word_rarity
from rag.relevance import mainly_cjk

_QUOTED = re.compile(r"[\"“”]([^\"“”]{2,60})[\"“”]|《([^》]{1,40})》|「([^」]{1,40})」")
_LETTER = r"[^\W_\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]"
_WORD = re.compile(rf"{_LETTER}(?:{_LETTER}|['’&.\-/])*")
"""Letters and digits of any alphabet but CJK: "JägerMonkey", "Zürich" and "Dvořák" are one
name each; "W7900和W7800" two models."""
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
    about into per vs mr mrs ms dr january february march april june july august september
    october november december monday tuesday wednesday thursday friday saturday sunday
    """.split()
)
"""Capitalised words that say nothing about *which* subject (question words, titles, and month
and day names, which documents mostly write as numbers)."""
_MODEL_NUMBER = re.compile(r"^(?!(?:1[89]|20)\d\d$)\d{2,5}[A-Za-z]?$")
"""``182``, ``172S``, ``737``: a model number, one identifier with the name before it (not a
year: "Keaton's 1928 film" is Keaton and 1928)."""
_SHORT_NUMBER = re.compile(r"^\d{1,2}$")
_LETTER_CLASS = re.compile(r"\b[^\W\d_][^\W\d_A-Z]{2,} [A-HJ-Z]\b(?![.\w'’-])")
"""A word with a capital letter after it that says which kind: hepatitis B, hemophilia A,
Class C shares, Schedule K. Written the same wherever it appears; not "Vance W. Amory"."""
_LOWER_WORD = re.compile(r"(?<![\w-])[a-z]{5,}(?![\w-])")
_RARE_PIECES = 3
RARE_ZIPF = 2.0
"""Rarer than once per hundred million words: technical words ("uveal" 1.7, "aligners" 1.5);
readers' paraphrases of what a document says are commoner ("counterfeiting" 2.8)."""
_SENTENCE_GAP = re.compile(r"(?<=[.?!])\s+")
_INITIAL = re.compile(r"[A-Z]\.")
_ABBREVIATIONS = frozenset(
    "st mt ft dr mr mrs ms jr sr no vs inc co corp ltd prof gen col capt sgt dept univ".split()
)
"""Abbreviations written with a period before a name (St. Maarten, Dr. Rosen, Mt. Hood)."""
_CJK_THEN_MODEL = re.compile(
    r"([\u4e00-\u9fff]+)([A-Za-z][A-Za-z0-9]*|\d+)((?: [A-Z0-9](?![A-Za-z0-9]))?)"
)
_YEAR = re.compile(r"^(?:19|20)\d\d$")
_CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SMALL_QUANTITY = re.compile(
    r"(?:\b(?P<before>[A-Z][a-z]{2,})\s)?"
    r"(?<![\w.,/-])(?P<number>\d{1,2}(?:\.\d+)?)(?![\w.,/-]|\.\d)"
    r"(?:\s?(?P<after>[a-zA-Zµ°%][a-zA-Z]*(?:/[a-zA-Z]+)?))?"
)
_NOT_UNITS = _COMMON_CAPITALISED | {"than", "more", "less", "times", "per", "over", "up"}
"""Words next to a number that say nothing of what it counts ("the 12", "in 3")."""
_CHINESE_PROPER = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz", "eng"})
_CHINESE_UNITS = frozenset(aliases.CHINESE_MEASURE_WORDS + "年月日号时点分秒天周元块万亿成多余")
"""Characters that make the number before them a date, a time or a count, not a model."""
_DEMONSTRATIVES = frozenset("这那哪")
_CHINESE_FUNCTION_TAGS = frozenset("rmq")
"""jieba's tags of pronouns, numerals and measure words (r, m, q and their kinds: mq, rz)."""
_TRIM = ".,;:!?'’\")(“”"
_tagger_lock = threading.Lock()
_tagger: Any = None


@dataclass(frozen=True)
class Term:
    text: str
    identifier: bool
    """Written the same way wherever it appears (number, model, code, quote), unlike a name."""
    run: str = ""
    """For a name, the question's capitalised words around it ("New Hampshire" for
    "Hampshire"), which an abbreviation in a document stands for."""
    month: int = 0
    quarter: int = 0
    year: int = 0
    """For a period ("July 2008", "Q3 2022", 2022年第四季度), which documents write in many ways
    (7/12/2008, "the third quarter of fiscal 2022", 四季度); the year is 0 for a quarter alone."""
    number: str = ""
    units: tuple[str, ...] = ()
    """For a quantity ("48 cycles", "3 mg/kg", "Month 36"): its small number and the words
    written next to it, one of which a document must write near that number."""

    @property
    def probe(self) -> str:
        """What the keyword index counts for the term: a period's year, a quantity's unit."""
        if self.month or (self.quarter and self.year):
            return str(self.year)
        return self.units[0] if self.units else self.text


def salient_terms(question: str) -> list[Term]:
    """The question's salient terms (quotes, then periods, then the rest in order of
    appearance), unique (case-insensitive)."""
    terms = [
        Term(next(group for group in match.groups() if group), True)
        for match in _QUOTED.finditer(question)
    ]
    unquoted = _QUOTED.sub(" ", question)
    for text, quarter, year in aliases.quarters(unquoted):
        terms.append(Term(text, True, quarter=quarter, year=year))
        unquoted = unquoted.replace(text, " ", 1)
    if mainly_cjk(unquoted):
        terms += _chinese_terms(unquoted) + chinese_quantities(unquoted)
    else:
        for text, month, year in aliases.periods(unquoted):
            terms.append(Term(text, True, month=month, year=year))
            unquoted = unquoted.replace(text, " ", 1)
        terms += [Term(match.group(), True) for match in _LETTER_CLASS.finditer(unquoted)]
        terms += _english_terms(unquoted)
        terms += quantities(unquoted)
    unique: dict[str, Term] = {}
    for term in terms:
        cleaned = term.text.strip(_TRIM + " ")
        if cleaned and cleaned.lower() not in unique:
            unique[cleaned.lower()] = dataclasses.replace(term, text=cleaned)
    return list(unique.values())


def _english_terms(question: str) -> list[Term]:
    terms: list[Term] = []
    for sentence in _sentences(question):
        matches = list(_WORD.finditer(sentence))
        words = [match.group().strip(_TRIM) for match in matches]
        pauses = [  # "Alton, New Hampshire" are two places, "RIAA's Hilary Rosen" two names
            sentence[match.end() : match.end() + 1] in (",", ";", ":")
            or _possessive(words[position]) != words[position]
            for position, match in enumerate(matches)
        ]
        previous_name: str | None = None
        run: list[int] = []  # positions in ``terms`` of the names written one after another
        for position, word in enumerate(words):
            if not _is_salient_word(word, first=position == 0):
                previous_name = None
                run = _close_run(terms, run)
                continue
            word = _possessive(word)
            if not _HAS_DIGIT.search(word):
                terms.append(Term(word, False))
                run.append(len(terms) - 1)
                previous_name = word
            elif previous_name is not None and _MODEL_NUMBER.match(word):
                terms[-1] = Term(f"{previous_name} {word}", True)  # "Cessna 182"
                previous_name = None
            else:
                terms.append(Term(word, True))
                previous_name = None
            if terms[-1].identifier or pauses[position]:
                run = _close_run(terms, run)
        _close_run(terms, run)
    return terms


def _sentences(question: str) -> list[str]:
    """The question's sentences: a capital after one starts a sentence, not a name. A period
    after an initial ("Vance W. Amory") or an abbreviation ("St. Maarten") ends none."""
    sentences: list[str] = []
    start = 0
    for gap in _SENTENCE_GAP.finditer(question):
        last = question[start : gap.start()].split()[-1]
        if last.endswith(".") and (_INITIAL.fullmatch(last) or last[:-1].lower() in _ABBREVIATIONS):
            continue
        sentences.append(question[start : gap.start()])
        start = gap.end()
    return [*sentences, question[start:]]


def quantities(question: str) -> list[Term]:
    """Small numbers with the words written next to them: "48 cycles", "3 mg/kg", "Month 36".

    A number of one or two digits alone is in every document ("the 3 arms"), so it is no
    salient term by itself; with its unit or counted noun it says which passage: a protocol
    whose maintenance ends after 24 cycles does not answer "after 48 cycles". Numbers written
    onto a word ("85-year-old", "4J", "RV-8") are left out: models and phrasings.
    """
    found: dict[str, Term] = {}
    for match in _SMALL_QUANTITY.finditer(question):
        number, before, after = match["number"], match["before"], match["after"]
        units = tuple(word for word in (after, before) if word and word.lower() not in _NOT_UNITS)
        if units and number not in found:
            found[number] = Term(match.group().strip(), True, number=number, units=units)
    return list(found.values())


def chinese_quantities(question: str) -> list[Term]:
    """Small counts written in Chinese: a number of one or two digits, or an ordinal (第七),
    right before its measure word: 第50次, 17人, 3家, 第七届. As in English ("48 cycles"), the
    number alone is in every article; with its measure word it says which one. Dates and
    times (8月, 3日) are periods, not counts; 一个 and 两家 without 第 are "a", not a number."""
    found: dict[str, Term] = {}
    for match in aliases.CHINESE_COUNT.finditer(question):
        value = aliases.chinese_number(match["number"])
        if value is None or (match["number"][0] in "一两" and not match["ordinal"]):
            continue
        text = match.group()
        found.setdefault(text, Term(text, True, number=str(value), units=(match["unit"],)))
    return list(found.values())


def _close_run(terms: list[Term], run: list[int]) -> list[int]:
    """Give each name of a run of names the run's words; an empty run to start the next."""
    words = " ".join(terms[position].text for position in run)
    for position in run:
        terms[position] = dataclasses.replace(terms[position], run=words)
    return []


def rare_words(question: str, pieces: Callable[[str], int]) -> list[Term]:
    """Lower-case technical words a question may turn on (carfilzomib, uveal, metformin).

    Two signs tell one, each missing some: the embedding model's vocabulary splits it into
    three or more pieces (``pieces`` counts a word's tokens; "met-form-in", but "uv-eal" is two),
    or general English uses it less than :data:`RARE_ZIPF` (:mod:`rag.word_rarity`; "uveal"
    1.7, but "metformin" 2.6, as common as "aphorisms", a reader's word for a list of
    maxims). Common words, paraphrases included, are left to the score.
    """
    if mainly_cjk(question):
        return _guessed_chinese_words(question)
    words = dict.fromkeys(_LOWER_WORD.findall(question))
    return [
        Term(word, False)
        for word in words
        if pieces(word) >= _RARE_PIECES or word_rarity.zipf(word, "en", floor=RARE_ZIPF) < RARE_ZIPF
    ]


def _guessed_chinese_words(question: str) -> list[Term]:
    """Chinese words jieba's dictionary lacks and general Chinese rarely uses (喜茶, 小鹏): the
    names of new brands, shops and people, which its tagger often calls a verb or a common noun.

    jieba finds such a word by guessing (its HMM joins characters no dictionary word claims),
    and sometimes guesses wrong: in 美国人欠的 it joins 人欠, whose 人 belongs to 美国人. A guess
    that a dictionary word overlaps, other than as a part of it, is such a slip and is left out;
    so is a pronoun, numeral or measure word (那批, 几枚: "that batch", "how many"), one general
    Chinese uses at least :data:`RARE_ZIPF` (a common word, a paraphrase), and one wordfreq does
    not know at all (a slip as well, seen nowhere else).
    """
    tagged = _tag(question)
    import jieba

    dictionary = jieba.dt.FREQ
    spans = [
        (start, end + 1)
        for start, ends in jieba.dt.get_DAG(question).items()
        for end in ends
        if end > start and dictionary.get(question[start : end + 1])
    ]
    guessed: list[Term] = []
    start = 0
    for word, flag in tagged:
        end = start + len(word)
        crossed = any(  # a dictionary word overlapping it that is not a part of it
            low < end and start < high and not start <= low < high <= end for low, high in spans
        )
        if (
            len(word) >= 2
            and all(_CJK_CHAR.match(char) for char in word)
            and not dictionary.get(word)
            and not crossed
            and flag[:1] not in _CHINESE_FUNCTION_TAGS
            and 0 < word_rarity.zipf(word, "zh") < RARE_ZIPF
        ):
            guessed.append(Term(word, False))
        start = end
    return guessed


def _is_salient_word(word: str, *, first: bool) -> bool:
    if len(word) < 2:
        return False
    lower = _possessive(word).lower()
    if _PERIOD_CODE.match(word) or _NUMBER_WITH_UNIT.match(word) or _SHORT_NUMBER.match(word):
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


def _chinese_terms(question: str) -> list[Term]:
    terms: list[Term] = []
    for word, flag in _tag(question):
        word = word.strip()
        if len(word) < 2 or _SHORT_NUMBER.match(word):
            continue
        if _HAS_DIGIT.search(word) and flag in _CHINESE_PROPER | {"m", "t"}:
            terms.append(Term(word, True))
        elif flag in _CHINESE_PROPER and word[0] not in _DEMONSTRATIVES:
            terms.append(Term(word, False))  # not 那阵子 ("that while"), which jieba calls a name
    return terms + _chinese_models(question)


def _chinese_models(question: str) -> list[Term]:
    """A Chinese name with a model written onto it (小米14, 哪吒GT, 高合HiPhi Z): one
    identifier, as "Cessna 182" is; jieba cuts it into a name the collection knows and a number
    or code found elsewhere. The name must be a noun (not 换成X: "changed to X").

    A code of letters and digits (奥迪A6) is an identifier by itself, required in the same
    document as the name, and documents often write the brand once and the code alone after it
    (奥迪 … A6 e-tron), so it is not joined: as in English, where "Audi A6" is two terms."""
    models: list[Term] = []
    for match in _CJK_THEN_MODEL.finditer(question):
        model = match.group(2)
        if _YEAR.match(model):
            continue  # 腾讯2023: the company and a year
        if _HAS_DIGIT.search(model) and not model.isdigit():
            continue  # 奥迪A6: the name and a code, each a term
        if model.isdigit() and question[match.end(2) : match.end(2) + 1] in _CHINESE_UNITS:
            continue  # 人民银行8月18日: the bank and a date
        name, flag = _tag(match.group(1))[-1]
        if len(name) >= 2 and (flag.startswith("n") or flag == "eng"):
            models.append(Term(name + model + match.group(3), True))
    return models


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
