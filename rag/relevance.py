"""Lexical evidence that a search found the question's subject, for questions written in Chinese.

The "not in your documents" decision normally compares the best hit's cosine similarity with a
threshold. That only works where the embedding model understands the language: the default
all-MiniLM-L6-v2 is English-only, and its scores for Chinese questions are noise (an unanswerable
question can outscore answerable ones). For questions written mainly in CJK characters we ask
instead how much of the question's content the best passage contains:

- content terms are the question's CJK character bigrams after question words (什么, 哪些, 多少 ...)
  and particles (的, 了, 吗 ...) are cut out, so they neither count as found nor as missing;
- each term is weighted by its rarity in the collection (BM25's idf), so words every passage
  shares (中国, 时期) count little and a missing key term (地铁 in a question about a subway,
  asked of documents about railways) counts much;
- the support of a search is the best single passage's weighted share of the terms, in [0, 1].
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]")
_QUESTION_WORDS = (
    "什么时候 为什么 怎么样 是不是 有没有 能不能 可不可以 什么 哪些 哪个 哪里 哪儿 是否 如何 "
    "为何 多少 多久 多长 多大 多高 多远 怎么 怎样 请问 一下 介绍 告诉 "
    "甚麼 什麼 為什麼 為何 哪裡 怎麼 請問"
).split()
_PARTICLES = "的了吗呢吧啊呀嘛么麼是谁誰哪几幾和与與及或被把在有从從到个個过過也就还還这這那"
_NOT_CONTENT = re.compile(
    "|".join(sorted(_QUESTION_WORDS, key=len, reverse=True)) + f"|[{_PARTICLES}]"
)
_SPACE = re.compile(r"\s+")


def mainly_cjk(query: str) -> bool:
    """Whether at least half of the query's letters are CJK characters."""
    letters = _LETTER.findall(query)
    return bool(letters) and 2 * sum(1 for c in letters if _CJK.match(c)) >= len(letters)


def content_terms(query: str) -> list[str]:
    """The query's CJK bigrams once question words and particles are cut out, in order, unique."""
    terms: list[str] = []
    for part in _NOT_CONTENT.split(query):
        run: list[str] = []
        for char in part + " ":
            if _CJK.match(char):
                run.append(char)
                continue
            terms.extend("".join(run[i : i + 2]) for i in range(len(run) - 1))
            run = []
    return list(dict.fromkeys(terms))


def idf(document_frequency: int, total: int) -> float:
    """BM25's inverse document frequency: near 0 for a term in every passage, high if absent."""
    return math.log(1.0 + (total - document_frequency + 0.5) / (document_frequency + 0.5))


def support(
    terms: Sequence[str],
    passages: Sequence[str],
    document_frequency: Mapping[str, int],
    total: int,
) -> float:
    """The best passage's idf-weighted share of ``terms`` (0 when there are no passages)."""
    weights = {term: idf(document_frequency.get(term, 0), total) for term in terms}
    whole = sum(weights.values())
    if whole <= 0:
        return 0.0
    best = 0.0
    for passage in passages:
        text = _SPACE.sub("", passage)
        best = max(best, sum(weight for term, weight in weights.items() if term in text) / whole)
    return best
