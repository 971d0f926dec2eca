"""The keyword leg of a shared library, on the Chroma server, ranked as the local FTS5 ranks.

A single-node Chroma server has no BM25 or sparse index (those are Chroma Cloud's), but it has a
full-text filter on each record's document (``where_document={"$contains": ...}``, over its
SQLite trigram index). Each passage's document holds its terms as FTS5 indexes them, space
separated (:func:`rag.keyword.stems`), so `` term `` finds exactly the passages holding the term:
the server answers which passages hold which query term, and this module scores them with
FTS5's own ``bm25()`` (k1 = 1.2, b = 0.75, idf ``log((N - n + 0.5) / (n + 0.5))``, floored at
1e-6; document length counted over passage and context terms together).

Only the best candidates by summed idf (:data:`RESCORED` of them at least) are fetched to be
scored exactly; a passage outside them would need many occurrences of common terms to overtake
one holding a rarer term, which BM25's saturation (k1) rarely allows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rag import keyword
from rag.manifest import chunk_id
from rag.shared import SharedIndex, split_keyword_document

K1 = 1.2
B = 0.75
RESCORED = 200
"""Candidates scored exactly per search (or four times the limit when that is more)."""
_PARALLEL_LOOKUPS = 8
"""Terms looked up on the server at once: a query's latency is its slowest term's, not the sum."""

Phrase = tuple[str, ...]


def idf(rows: int, holding: int) -> float:
    """FTS5's idf: terms in more than half of the rows get (almost) no weight."""
    value = math.log((rows - holding + 0.5) / (holding + 0.5)) if rows else 0.0
    return value if value > 0 else 1e-6


def occurrences(phrase: Phrase, terms: Sequence[str]) -> int:
    width = len(phrase)
    return sum(1 for i in range(len(terms) - width + 1) if tuple(terms[i : i + width]) == phrase)


class ServerKeywords:
    """:class:`rag.keyword.KeywordIndex` over the shared passages on the server.

    ``collections`` lists the library's collections (document frequencies span them all, as
    the local index's do).
    """

    def __init__(self, shared: SharedIndex, collections: Callable[[], list[str]]) -> None:
        self.shared = shared
        self._collections = collections

    def search(
        self,
        query: str,
        collection: str,
        limit: int,
        content_hash: str | None = None,
        with_context: bool = True,
    ) -> list[tuple[str, float]]:
        """Best ``(chunk_id, bm25)`` pairs, best first (lower is better, as FTS5's)."""
        passages = self.shared.passages_of(collection)
        phrases = list(dict.fromkeys(tuple(s) for s in keyword.stems(keyword.query_terms(query))))
        phrases = [phrase for phrase in phrases if phrase]
        if passages is None or not phrases:
            return []
        rows = int(passages.count())
        with ThreadPoolExecutor(max_workers=_PARALLEL_LOOKUPS) as pool:  # one request per term
            looked_up = pool.map(lambda phrase: self._holding(passages, _needle(phrase)), phrases)
            holders = dict(zip(phrases, looked_up, strict=True))
        weight = {phrase: idf(rows, len(ids)) for phrase, ids in holders.items()}
        bound: dict[str, float] = defaultdict(float)
        for phrase, ids in holders.items():
            for chunk in ids:
                bound[chunk] += weight[phrase]
        if content_hash is not None:  # chunk ids begin with their content's hash
            prefix = keyword_prefix(content_hash)
            bound = defaultdict(float, {c: s for c, s in bound.items() if c.startswith(prefix)})
        shortlist = sorted(bound, key=lambda chunk: (-bound[chunk], chunk))
        shortlist = shortlist[: max(RESCORED, 4 * limit)]
        if not shortlist:
            return []
        found = passages.get(ids=shortlist, include=["documents"])
        average = self.shared.average_terms(collection, rows)
        scored: list[tuple[str, float]] = []
        for chunk, document in zip(found["ids"], found["documents"], strict=True):
            text, context = split_keyword_document(document or "")
            searched = text + context if with_context else text
            length = len(text) + len(context)
            score = 0.0
            for phrase in phrases:
                tf = occurrences(phrase, searched) if chunk in holders[phrase] else 0
                if tf:
                    norm = K1 * (1 - B + B * length / average)
                    score += weight[phrase] * tf * (K1 + 1) / (tf + norm)
            if score > 0:
                scored.append((str(chunk), -score))
        scored.sort(key=lambda pair: (pair[1], pair[0]))
        return scored[:limit]

    def passages_mentioning(
        self,
        collection: str,
        term: str,
        content_hash: str | None = None,
        at_most: int | None = None,
    ) -> int:
        """As :func:`rag.keyword.passages_mentioning`; the server's lookup has no early stop,
        so ``at_most`` changes nothing here."""
        passages = self.shared.passages_of(collection)
        needle = _term_needle(term)
        if passages is None or needle is None:
            return 0
        holding = self._holding(passages, needle)
        if content_hash is None:
            return len(holding)
        own = sorted(c for c in holding if c.startswith(keyword_prefix(content_hash)))
        phrase = tuple(keyword.stems([term])[0])
        found = passages.get(ids=own, include=["documents"]) if own else {"documents": []}
        texts = (split_keyword_document(document or "")[0] for document in found["documents"])
        return sum(1 for text in texts if occurrences(phrase, text))

    def contents_mentioning(
        self, collection: str, terms: Sequence[str], contents: Sequence[str]
    ) -> set[str]:
        passages = self.shared.passages_of(collection)
        needles = [_term_needle(term) for term in terms]
        if passages is None or not needles or None in needles or not contents:
            return set()
        holding = set.intersection(*(self._holding(passages, str(needle)) for needle in needles))
        return {h for h in contents if any(c.startswith(keyword_prefix(h)) for c in holding)}

    def document_frequencies(self, terms: Iterable[str]) -> tuple[dict[str, int], int]:
        """How many passages hold each term, and how many passages there are (all collections)."""
        wanted = list(terms)
        frequencies = dict.fromkeys(wanted, 0)
        total = 0
        for collection in self._collections():
            passages = self.shared.passages_of(collection)
            if passages is None:
                continue
            total += int(passages.count())
            for term in wanted:
                frequencies[term] += len(self._holding(passages, f" {term} "))
        return frequencies, total

    @staticmethod
    def _holding(passages: Any, needle: str) -> set[str]:
        found = passages.get(where_document={"$contains": needle}, include=[])
        return {str(chunk) for chunk in found["ids"]}


def keyword_prefix(content_hash: str) -> str:
    """What every chunk id of a content begins with (:func:`rag.manifest.chunk_id`)."""
    return chunk_id(content_hash, 0).rsplit("-", 1)[0] + "-"


def _needle(phrase: Phrase) -> str:
    """The text a stored keyword document holds where it holds the phrase."""
    return f" {' '.join(phrase)} "


def _term_needle(term: str) -> str | None:
    """As :func:`rag.keyword._term_expression`: a phrase, open-ended after a final digit."""
    tokens = keyword.tokenize(term)
    if not tokens:
        return None
    phrase = keyword.stems([term])[0]
    if not phrase:
        return None
    return f" {' '.join(phrase)}" + ("" if keyword.is_prefix_term(tokens) else " ")
