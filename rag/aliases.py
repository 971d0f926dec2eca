"""Whether a document writes a question's name or period another way than the question does.

The relevance judge (:meth:`rag.library.Library.judge`) refuses a question whose names the
collection never mentions: "the Mooney that ground looped at Belen" asked of reports that know
no Mooney is about another aircraft. But a name missing *as spelt* may still be there in
another form, and refusing those would refuse answerable questions. Documents commonly write:

- an abbreviation: "NH" for "New Hampshire" (exactly the initials of its words), "Muscle
  Shoals, AL" for "Alabama" (a US state's postal code after a place and a comma; other letters
  after a comma stand for too many things: "San Diego, CA" is not Cleveland);
- another form of the word: "Mexico" for "Mexican" (all but their endings shared), "cGVHD" for
  "GVHD" (an acronym at the end of a longer word; "request" is no form of Quest);
- a date in numbers: "11/16/2007" or "2007-11-16" for "November 2007";
- a quarter in words or a code: "the third quarter of fiscal 2022", "Q3", "3Q22", 第三季度, 三季度.

These checks only ever *accept* a name that the literal search missed, so a loose match costs
an answer that should have been refused, never a refusal of an answerable question.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence

_CHINESE_DIGITS = {char: value for value, char in enumerate("零一二三四五六七八九")} | {"两": 2}
_CHINESE_NUMERALS = "零一二两三四五六七八九十百千万亿"
CHINESE_MEASURE_WORDS = "次个届人名家辆台架艘件项条位座场款种批轮期例份所支只头层倍岁"
"""Words that count what a number before them is of (第50次, 17人, 3家)."""
CHINESE_COUNT = re.compile(
    rf"(?P<ordinal>第\s*)?(?<![\d.{_CHINESE_NUMERALS}])"
    rf"(?P<number>\d{{1,2}}(?![\d.])|[{_CHINESE_NUMERALS[:-4]}]{{1,3}})\s*"
    rf"(?P<unit>[{CHINESE_MEASURE_WORDS}])"
)
"""A count under a hundred before its measure word, as questions and articles write it."""
POSTAL_CODES = dict(
    pair.replace("_", " ").split("=")
    for pair in (
        "alabama=AL alaska=AK arizona=AZ arkansas=AR california=CA colorado=CO connecticut=CT "
        "delaware=DE florida=FL georgia=GA hawaii=HI idaho=ID illinois=IL indiana=IN iowa=IA "
        "kansas=KS kentucky=KY louisiana=LA maine=ME maryland=MD massachusetts=MA michigan=MI "
        "minnesota=MN mississippi=MS missouri=MO montana=MT nebraska=NE nevada=NV "
        "new_hampshire=NH new_jersey=NJ new_mexico=NM new_york=NY north_carolina=NC "
        "north_dakota=ND ohio=OH oklahoma=OK oregon=OR pennsylvania=PA rhode_island=RI "
        "south_carolina=SC south_dakota=SD tennessee=TN texas=TX utah=UT vermont=VT "
        "virginia=VA washington=WA west_virginia=WV wisconsin=WI wyoming=WY "
        "district_of_columbia=DC puerto_rico=PR"
    ).split()
)
"""US states' postal codes (USPS), which addresses and report headers write after a city."""
MONTHS = (
    "january february march april may june july august september october november december"
).split()
_MONTH_NUMBER = {name: number for number, name in enumerate(MONTHS, start=1)}
_MONTH_NUMBER.update({name[:3]: number for name, number in list(_MONTH_NUMBER.items())})
_MONTH_NUMBER["sept"] = 9
PERIOD = re.compile(
    r"\b(?P<month>" + "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True)) + r")\.?"
    r"(?:\s+\d{1,2}(?:st|nd|rd|th)?,?)?\s+(?P<year>(?:19|20)\d{2})\b",
    re.IGNORECASE,
)
"""A month with its year in a question: "July 2008", "November 16, 2007", "Dec. 2007"."""
_DAY_MONTH_YEAR = re.compile(
    r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?P<month>"
    + "|".join(sorted(_MONTH_NUMBER, key=len, reverse=True))
    + r")\.?,?\s+(?P<year>(?:19|20)\d{2})\b",
    re.IGNORECASE,
)
"""The same written day first: "16 November 2007"."""
_WORD = re.compile(r"[^\W\d_]{4,}")
_SHARED_START = 5
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ENDING = 3


def month_number(name: str) -> int:
    """The month a name or abbreviation stands for (``"Nov"`` → 11); 0 when it is none."""
    return _MONTH_NUMBER.get(name.lower().rstrip("."), 0)


def periods(question: str) -> list[tuple[str, int, int]]:
    """The months with years a question names, as (its words, month, year), in order."""
    matches = [*_DAY_MONTH_YEAR.finditer(question), *PERIOD.finditer(question)]
    taken: list[re.Match[str]] = []
    for match in matches:  # "16 November 2007" once, not again as "November 2007"
        if all(match.end() <= other.start() or match.start() >= other.end() for other in taken):
            taken.append(match)
    taken.sort(key=lambda match: match.start())
    return [(match.group(), month_number(match["month"]), int(match["year"])) for match in taken]


_ORDINALS = ("first", "second", "third", "fourth")
_FIGURES = ("1st", "2nd", "3rd", "4th")
_FISCAL = r"(?:fiscal\s+(?:year\s+)?|FY\s*)"
_YEAR_BEFORE = re.compile(
    rf"(?:{_FISCAL}?(?P<year>(?:19|20)\d{{2}})\s*(?:年\s*)?(?:财年\s*)?)?(?:第\s*)?$", re.IGNORECASE
)
"""What may come before a quarter in a question: "fiscal 2022 Q3", "2022 fourth-quarter",
2022年第四季度, 2023财年第三财季, 2023Q2."""
_YEAR_AFTER = re.compile(
    rf"(?:\s+of|,)?\s*{_FISCAL}(?P<fiscal>(?:19|20)?\d{{2}})(?!\d)"
    r"|(?:\s+of|,)?\s+(?P<after>(?:19|20)\d{2})(?!\d)|'(?P<short>\d{2})(?!\d)"
    r"|(?<=Q)(?P<glued>\d{2})(?!\d)",
    re.IGNORECASE,
)
"""What may come after it: "Q3 2022", "Q3 of 2022", "Q3 FY22", "Q3'22", "3Q22"."""


def quarters(question: str) -> list[tuple[str, int, int]]:
    """The quarters a question names, as (its words, quarter, year or 0), in order, the year
    before or after the quarter when the question gives one."""
    found: list[tuple[int, int, int, int]] = []
    for quarter in range(1, 5):
        for start, end in _written_quarters(quarter, question):
            before = _YEAR_BEFORE.search(question, max(0, start - 20), start)
            after = _YEAR_AFTER.match(question, end)
            year = (before and before["year"]) or (
                after and next(group for group in after.groups() if group)
            )
            start = before.start() if before else start
            found.append((start, after.end() if after else end, quarter, _full_year(year or "")))
    found.sort()
    kept = [item for i, item in enumerate(found) if not i or item[0] >= found[i - 1][1]]
    return [(question[start:end].strip(), quarter, year) for start, end, quarter, year in kept]


_ENDED_WHAT = re.compile(
    r"(?:\b(?:three|3)[\s-]+months?|\bquarter(?:ly\s+period)?)\s+$", re.IGNORECASE
)
_QUARTER_ENDED = re.compile(
    r"ended\s+(?:[A-Za-z]+\.?\s+\d{1,2},?\s+)?(?P<year>(?:19|20)\d{2})?", re.IGNORECASE
)
"""How a filing dates a quarter by its last day ("For the quarterly period ended June 25, 2022",
"three months ended September 30"): which quarter that is depends on the company's fiscal
year (Apple's third ends in June), so it stands for any quarter of its year. "ended" is found
first, then :data:`_ENDED_WHAT` before it."""


def quarter_in(quarter: int, year: int, text: str) -> bool:
    """Whether ``text`` writes that quarter (in a form :func:`_quarter_forms` knows, or dated by
    its end: :data:`_QUARTER_ENDED`) and, when one is given, the year anywhere: a filing or an
    article dates itself once and then writes "the third quarter" or 第二季度 alone."""
    if year and not re.search(rf"(?<!\d){year}(?!\d)|\bFY\s*'?{year % 100:02d}\b", text):
        return False
    if next(_written_quarters(quarter, text), None):
        return True
    return any(
        (not year or match["year"] == str(year))
        and _ENDED_WHAT.search(text, max(0, match.start() - 24), match.start())
        for match in _QUARTER_ENDED.finditer(text)
    )


def _written_quarters(quarter: int, text: str) -> Iterator[tuple[int, int]]:
    """Where ``text`` writes that quarter, as (start, end). Each form is searched alone from its
    first literal, with the character before it checked after: one pattern of all of them,
    lookbehinds first, took 0.3 s over a book."""
    for pattern, not_before in _quarter_forms(quarter):
        for match in pattern.finditer(text):
            if match.start() == 0 or not re.match(not_before, text[match.start() - 1]):
                yield match.start(), match.end()


@functools.cache
def _quarter_forms(quarter: int) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(form, what may not come right before it) for one quarter: Q3, 3Q, "third quarter",
    "3rd fiscal quarter", 三季度, 3季度, 三财季."""
    words = f"(?:{_ORDINALS[quarter - 1]}|{_FIGURES[quarter - 1]})"
    chinese = "零一二三四"[quarter]
    return (
        (re.compile(rf"Q{quarter}(?!\d)", re.IGNORECASE), r"[A-Za-z]"),
        (re.compile(rf"{quarter}Q(?=\d{{2}}(?!\d)|\b)", re.IGNORECASE), r"[\d.]"),
        (re.compile(rf"{words}[\s-]+(?:fiscal\s+)?quarter\b", re.IGNORECASE), r"\w"),
        (re.compile(rf"[{quarter}{chinese}]\s*(?:季度|财季)"), r"[\d十百]"),
    )


def _full_year(year: str) -> int:
    """2022 for "2022" and "22" (FY22, Q3'22, 3Q22); 0 for none."""
    if not year:
        return 0
    return int(year) if len(year) == 4 else 2000 + int(year)


def period_in(month: int, year: int, text: str) -> bool:
    """Whether ``text`` dates something in that month: by name ("July 2008", "12 Jul 2008") or
    in numbers (7/12/2008, 12.07.2008, 2008-07-12, 2008年7月)."""
    names = "|".join(name for name, number in _MONTH_NUMBER.items() if number == month)
    by_name = (
        rf"\b(?:{names})\.?(?:\s+\d{{1,2}}(?:st|nd|rd|th)?,?)?\s+{year}\b"
        rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{names})\.?,?\s+{year}\b"
    )
    if re.search(by_name, text, re.IGNORECASE):
        return True
    m = rf"0?{month}"
    by_number = (
        rf"(?<!\d){m}[/.-]\d{{1,2}}[/.-]{year}(?!\d)"  # month first: 7/12/2008
        rf"|(?<!\d)\d{{1,2}}[/.-]{m}[/.-]{year}(?!\d)"  # day first: 12.07.2008
        rf"|(?<!\d){year}[/.-]{m}(?:[/.-]\d{{1,2}})?(?!\d)"  # 2008-07-12, 2008-07
        rf"|{year}\s*年\s*{m}\s*月"
    )
    return re.search(by_number, text) is not None


def quantity_in(number: str, units: Sequence[str], text: str) -> bool:
    """Whether ``text`` writes the number (in digits, or in words up to ninety) with one of the
    units: after it, up to two words between ("48 treatment cycles", "forty-eight cycles",
    "60°/s"), or right before it ("Month 36"); singular or plural. Punctuation between them
    parts them ("24 cycles; 48 patients"). A Chinese measure word follows its number directly,
    in digits or characters, spaces allowed (第 50 次, 第五十次, 17人)."""
    if any(_CJK.search(unit) for unit in units):
        return _chinese_count_in(int(number), units, text)
    numbers = [re.escape(number)]
    if number.isdigit() and (spelt := _spelt(int(number))):
        numbers.append(spelt)
    value = rf"(?<![\w.,])(?:{'|'.join(numbers)})(?!\w|[.,]\d)"
    unit = "|".join(re.escape(u.lower().removesuffix("s")) + r"\w*" for u in units)
    pattern = rf"{value}\s?(?:[\w-]+\s+){{0,2}}(?:{unit})|(?:{unit})\s+{value}"
    return re.search(pattern, text, re.IGNORECASE) is not None


def chinese_number(written: str) -> int | None:
    """The value of a count under a hundred in digits or characters (七, 十七, 五十, 两)."""
    if written.isdigit():
        return int(written)
    tens, ten, ones = written.partition("十")
    if not ten:
        return _CHINESE_DIGITS.get(written)
    if tens not in ("", *_CHINESE_DIGITS) or ones not in ("", *_CHINESE_DIGITS):
        return None
    return (_CHINESE_DIGITS[tens] if tens else 1) * 10 + (_CHINESE_DIGITS[ones] if ones else 0)


def _chinese_count_in(value: int, units: Sequence[str], text: str) -> bool:
    spelt = [_chinese_numeral(value)] + (["两"] if value == 2 else [])
    numbers = rf"(?<![\d.]){value}(?![\d.])|(?<![{_CHINESE_NUMERALS}])(?:{'|'.join(spelt)})"
    unit = "|".join(re.escape(u) for u in units)
    return re.search(rf"(?:{numbers})\s*(?:{unit})", text) is not None


def _chinese_numeral(value: int) -> str:
    """七, 十七, 五十, 五十七 (under a hundred)."""
    digits = "零一二三四五六七八九"
    tens, ones = divmod(value, 10)
    if not tens:
        return digits[ones]
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


def _spelt(value: int) -> str | None:
    """An integer up to ninety in English words: "forty-eight" (hyphen or space)."""
    if value < len(_ONES):
        return _ONES[value]
    tens, ones = divmod(value, 10)
    if tens >= 10:
        return None
    return _TENS[tens] + (rf"[- ]{_ONES[ones]}" if ones else "")


_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = " ten twenty thirty forty fifty sixty seventy eighty ninety".split(" ")


def name_in(name: str, run: str, text: str) -> bool:
    """Whether ``text`` writes the name otherwise: as the initials of ``run`` (the question's
    capitalised words around the name, "NH" for "New Hampshire"), as its state's postal code
    after a place, as another form of the word, or as an acronym ending a longer word (cGVHD).
    Lower-case technical words have no abbreviations."""
    lower = name.lower()
    words = re.findall(r"[a-z]+", run.lower())
    if name[:1].isupper():
        initials = "".join(word[0] for word in words)
        if len(words) > 1 and re.search(rf"\b{initials.upper()}\b", text):
            return True
        code = POSTAL_CODES.get(" ".join(words)) or POSTAL_CODES.get(lower)
        if code and re.search(rf"\b[A-Z][a-z]+,\s*{code}\b", text):
            return True
    chinese = bool(_CJK.search(lower))  # no spaces between words: a name is inside a run
    for word in set(_WORD.findall(text.lower())):
        if word == lower:
            continue
        if _shares_start(word, lower) or (
            lower in word if chinese else name.isupper() and word.endswith(lower)
        ):
            return True
    return False


def _shares_start(word: str, name: str) -> bool:
    """Two forms of one word: "mexican" and "mexico" share all but their endings."""
    shared = 0
    for a, b in zip(word, name, strict=False):
        if a != b:
            break
        shared += 1
    return shared >= _SHARED_START and max(len(word), len(name)) - shared <= _ENDING
