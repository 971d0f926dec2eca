"""Evidence out: dense and keyword candidates fused by score, ranked by document, deduplicated.

Three decisions shape the ranking, each measured in ``benchmarks/retrieval.py``:

- **Fusion that knows its legs.** Each leg's scores are scaled to [0, 1] over its candidates
  (min-max) and the legs are averaged, each weighted by how far its best candidate stands above
  the rest (in standard deviations: a leg that sees one clear winner knows more than one whose
  scores are flat). A leg that carries no signal for this query gets no weight at all: the dense
  leg for a query in a script the embedding model was not trained on (an English-only model asked
  in Chinese), the keyword leg for a query of function words only. Equal weights and reciprocal
  rank fusion (RRF) stay available for comparison.
- **Documents, then passages.** A document's score is its best passage's; every passage is
  ranked by its own score plus its document's, so the passages of the document the question is
  about come before look-alike passages of its siblings (the same report form, the next quarter's
  filing). Documents that hold every name and identifier of the question (``rag.salience``) come
  before those that do not: in a folder of two reports, "the weather at Death Valley for the
  Beech A23" otherwise led with the other report, whose one passage about weather outscored the
  names, which every passage of the asked report carries in its identity.
- **Duplicates within a document only.** Overlapping or repeated passages of one document
  collapse to the best; a passage of another document is never hidden, however similar (quarter N
  and quarter N+1 of a filing share most of their boilerplate).

Each hit's ``score`` is the cosine similarity between the query and the passage (or the
cross-encoder's probability when reranking): fusion values say nothing about relevance, a fixed
scale is what a "not in your documents" threshold needs.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from rag import keyword, salience
from rag.embedder import Embedder, resolve_model
from rag.manifest import ChunkRow, Manifest, chunk_id
from rag.store import VectorStore
from rag.types import Hit

RRF_K = 60
"""The usual RRF constant: damps the weight of the very first ranks."""
DUPLICATE_JACCARD = 0.8
"""Passages of one document sharing this share of their tokens count as one."""
CANDIDATES = 50
"""Candidates taken from each leg: enough to see several passages of the documents in play."""
FOCUS_MIN_PASSAGES = 8
"""A document this long has sections whose order the question's own topic words cannot tell
apart (:meth:`Retriever._focused`); a shorter one is read nearly whole anyway."""
FOCUS_COMMON = 0.25
"""A word in more than this share of a document's passages describes the document."""
ENGLISH_ONLY_MODELS = frozenset(
    {
        "all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L12-v2",
        "sentence-transformers/all-MiniLM-L12-v2",
        "all-mpnet-base-v2",
        "sentence-transformers/all-mpnet-base-v2",
        "BAAI/bge-small-en-v1.5",
        "BAAI/bge-base-en-v1.5",
    }
)
"""Embedding models trained on English text only: their vectors of other scripts are noise."""
_MIN_OVERLAP = 16
"""Characters two neighbouring passages must share to be joined as one text."""
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")

Fusion = Literal["score", "rrf", "confidence"]
Legs = Literal["hybrid", "dense", "keyword"]


@dataclass(frozen=True)
class Methods:
    """Switches for the ranking methods; the defaults are the product, the rest are ablations."""

    legs: Legs = "hybrid"
    fusion: Fusion = "confidence"
    leg_signal: bool = True
    """Give no weight to a leg that carries no signal for the query."""
    document_stage: bool = True
    names_lead: bool = True
    """In the document stage, documents holding all the question's names come first."""
    keyword_context: bool = True
    """Match the keyword leg against passages' document identity and headings too."""
    collapse: Literal["document", "collection", "off"] = "document"
    focus: bool = True
    """Rank the leading document's passages by the question's words not all over it."""
    window: int = 1
    """Passages on each side of a hit returned with it (``Hit.before`` / ``Hit.after``): a
    passage small enough for the embedder matches well, and the model can read it in context
    when the prompt has room."""


@dataclass(frozen=True)
class RankedLists:
    """The candidate lists of one search, best first."""

    dense: list[tuple[str, float]]
    """``(chunk_id, cosine)``"""
    keyword: list[tuple[str, float]]
    """``(chunk_id, bm25)``, larger is better"""


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """Every id's sum of ``1 / (k + rank)`` over the lists it appears in."""
    scores: dict[str, float] = defaultdict(float)
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] += 1.0 / (k + rank)
    return dict(scores)


def score_fusion(legs: list[tuple[list[tuple[str, float]], float]]) -> dict[str, float]:
    """Weighted mean of min-max scaled scores; an id missing from a leg gets 0 there."""
    active = [(ranked, weight) for ranked, weight in legs if ranked and weight > 0]
    total = sum(weight for _, weight in active)
    fused: dict[str, float] = defaultdict(float)
    for ranked, weight in active:
        values = [value for _, value in ranked]
        low, high = min(values), max(values)
        for item, value in ranked:
            scaled = (value - low) / (high - low) if high > low else 1.0
            fused[item] += weight / total * scaled
    return dict(fused)


def dense_understands(model_name: str, query: str) -> bool:
    """Whether the embedding model was trained on the query's script (English-only: Latin)."""
    if model_name not in ENGLISH_ONLY_MODELS:
        return True
    letters = _LETTER.findall(query)
    return not letters or 2 * sum(1 for c in letters if _LATIN.match(c)) >= len(letters)


class Reranker:
    """A sentence-transformers cross-encoder, loaded on first use."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self._model: Any = None

    def scores(self, query: str, passages: list[str]) -> list[float]:
        if self._model is None:
            from sentence_transformers import CrossEncoder

            self._model = CrossEncoder(resolve_model(self.model_name))
        logits = self._model.predict([(query, passage) for passage in passages])
        return [1.0 / (1.0 + math.exp(-float(logit))) for logit in np.ravel(logits)]


class Retriever:
    def __init__(
        self,
        manifest: Manifest,
        store: VectorStore,
        embedder: Embedder,
        reranker: Reranker | None = None,
        methods: Methods | None = None,
        keywords: keyword.KeywordIndex | None = None,
    ) -> None:
        self.manifest, self.store, self.embedder = manifest, store, embedder
        self.keywords = keywords or keyword.LocalKeywords(manifest.connection)
        self.reranker = reranker
        self.methods = methods or Methods()

    def candidates(
        self,
        query: str,
        collection: str,
        limit: int,
        content_hash: str | None = None,
        vector: np.ndarray | None = None,
    ) -> tuple[RankedLists, np.ndarray]:
        """Both legs' candidates; the dense leg searches with ``vector`` when given (the
        question's own, for the words of it that :meth:`_focused` keeps)."""
        if vector is None:
            vector = self.embedder.embed_query(query)
        dense = []
        if self.methods.legs != "keyword":
            dense = self.store.query(collection, vector, limit, content_hash)
        lexical = []
        if self.methods.legs != "dense":
            found = self.keywords.search(
                query,
                collection,
                limit,
                content_hash,
                with_context=self.methods.keyword_context,
            )
            lexical = [(chunk, -bm25) for chunk, bm25 in found]
        return RankedLists(dense, lexical), vector

    def search(
        self, query: str, collection: str, k: int, content_hash: str | None = None
    ) -> list[Hit]:
        """Best ``k`` hits for ``query``, best first."""
        pool_size = max(k * 3, 10) if self.reranker is not None else k
        kept, vector, dense = self._ranked(query, collection, pool_size, content_hash)
        if self.methods.focus and content_hash is None and kept:
            kept = self._focused(query, collection, pool_size, kept, vector)
        if self.reranker is not None and kept:
            pool = kept[:pool_size]
            scores = self.reranker.scores(query, [row.text for row in pool])
            best = sorted(zip(pool, scores, strict=True), key=lambda pair: -pair[1])[:k]
        else:
            best = self._cosine_scores(collection, vector, kept[:k], dense)
        paths: dict[str, str] = {}
        hits = [self._hit(collection, row, score, paths) for row, score in best]
        return self._with_neighbours(collection, hits, {row.chunk_id: row.seq for row in kept})

    def _ranked(
        self,
        query: str,
        collection: str,
        wanted: int,
        content_hash: str | None,
        vector: np.ndarray | None = None,
    ) -> tuple[list[ChunkRow], np.ndarray, dict[str, float]]:
        """The best ``wanted`` passages without near-duplicates, the query's vector, and the
        dense leg's cosines."""
        lists, vector = self.candidates(
            query, collection, max(CANDIDATES, 4 * wanted), content_hash, vector
        )
        fused = self._fuse(query, lists)
        rows = self.manifest.chunks(collection, list(fused))
        named: set[str] = set()
        if self.methods.document_stage and self.methods.names_lead and content_hash is None:
            contents = {row.content_hash for row in rows.values()}
            named = self._named_documents(query, collection, contents)
        scores = {chunk: score for chunk, score in fused.items() if chunk in rows}
        ranked = self._rank(scores, rows, named)
        return self._collapse([rows[chunk] for chunk in ranked], wanted), vector, dict(lists.dense)

    def _focused(
        self, query: str, collection: str, wanted: int, kept: list[ChunkRow], vector: np.ndarray
    ) -> list[ChunkRow]:
        """Documents keep their places; the leading document's passages are ranked again by the
        question's words that are not all over it.

        "Which instrument assessed quality of life in the ovarian cancer online support group
        study?" finds the protocol by "ovarian cancer online support group", but in that
        protocol those words are in every section and outweigh "instrument" and "quality of
        life", which pick the answer. Words in the text of more than :data:`FOCUS_COMMON` of the
        document's passages say which document, not which passage. The dense leg searches with
        the question's own vector: a second embedding of the kept words ranked no better.
        """
        lead = kept[0].content_hash
        size = self.manifest.chunk_count(collection, lead)
        if size < FOCUS_MIN_PASSAGES:
            return kept
        terms = keyword.content_terms(query)
        common = int(FOCUS_COMMON * size)
        focus = [
            term
            for term in terms
            if self.keywords.passages_mentioning(collection, term, lead, common) <= common
        ]
        if not focus or len(focus) == len(terms):
            return kept
        within, _, _ = self._ranked(" ".join(focus), collection, wanted, lead, vector)
        ordered = [kept[0], *within, *(row for row in kept if row.content_hash == lead)]
        pool = iter({row.chunk_id: row for row in ordered}.values())
        return [next(pool) if row.content_hash == lead else row for row in kept]

    def _with_neighbours(self, collection: str, hits: list[Hit], seqs: dict[str, int]) -> list[Hit]:
        """Each hit with the text of :attr:`Methods.window` passages on each side."""
        window = self.methods.window
        if window <= 0 or not hits:
            return hits
        steps = [step for step in range(-window, window + 1) if step]
        wanted = [
            chunk_id(hit.content_hash, seqs[hit.chunk_id] + step) for hit in hits for step in steps
        ]
        rows = self.manifest.chunks(collection, wanted)
        widened: list[Hit] = []
        for hit in hits:
            seq = seqs[hit.chunk_id]
            texts = {
                step: rows[key].text
                for step in steps
                if (key := chunk_id(hit.content_hash, seq + step)) in rows
            }
            before = _joined([*(texts[s] for s in sorted(texts) if s < 0), hit.text])
            after = _joined([hit.text, *(texts[s] for s in sorted(texts) if s > 0)])
            widened.append(
                replace(
                    hit,
                    before=before[: len(before) - len(hit.text)].rstrip(),
                    after=after[len(hit.text) :].lstrip(),
                )
            )
        return widened

    def _fuse(self, query: str, lists: RankedLists) -> dict[str, float]:
        dense_weight = keyword_weight = 1.0
        if self.methods.leg_signal:
            if not dense_understands(self.embedder.model_name, query):
                dense_weight = 0.0
            if not keyword.has_content_terms(query):
                keyword_weight = 0.0
            if dense_weight == keyword_weight == 0.0:  # neither leg knows better: use both
                dense_weight = keyword_weight = 1.0
        if self.methods.fusion == "confidence":
            dense_weight *= _peak(lists.dense)
            keyword_weight *= _peak(lists.keyword)
        if self.methods.fusion == "rrf":
            rankings = [
                [chunk for chunk, _ in ranked]
                for ranked, weight in ((lists.dense, dense_weight), (lists.keyword, keyword_weight))
                if weight > 0
            ]
            return reciprocal_rank_fusion(rankings)
        return score_fusion([(lists.dense, dense_weight), (lists.keyword, keyword_weight)])

    def _named_documents(self, query: str, collection: str, contents: set[str]) -> set[str]:
        """Which of ``contents`` hold each name and identifier of the question (periods and
        quantities left out: documents write those in many forms); none if no candidate does."""
        if len(contents) < 2:
            return set()
        terms = salience.salient_terms(query)
        names = [term.text for term in terms if not (term.month or term.quarter or term.number)]
        if not names:
            return set()
        holders = set(contents)
        for name in names:
            holders &= self.keywords.contents_mentioning(collection, [name], sorted(holders))
            if not holders:
                break
        return holders

    def _rank(
        self, fused: dict[str, float], rows: dict[str, ChunkRow], named: set[str]
    ) -> list[str]:
        """Chunk ids best first: by fused score, plus the document's best when staged, the
        documents in ``named`` first."""
        if not self.methods.document_stage:
            return sorted(fused, key=lambda chunk: (-fused[chunk], chunk))
        document_score: dict[str, float] = defaultdict(float)
        for chunk, score in fused.items():
            content = rows[chunk].content_hash
            document_score[content] = max(document_score[content], score)
        total = {
            chunk: score + document_score[rows[chunk].content_hash]
            for chunk, score in fused.items()
        }
        return sorted(
            total,
            key=lambda chunk: (rows[chunk].content_hash not in named, -total[chunk], chunk),
        )

    def _collapse(self, rows: list[ChunkRow], wanted: int) -> list[ChunkRow]:
        """The best ``wanted`` rows without near-duplicates of a better passage (of the same
        document, by default); it stops there, since tokenizing every candidate costs more than
        the rest of a search."""
        if self.methods.collapse == "off":
            return rows[:wanted]
        kept: list[ChunkRow] = []
        kept_tokens: list[tuple[str, set[str]]] = []
        for row in rows:
            if len(kept) == wanted:
                break
            tokens = set(keyword.tokenize(row.text))
            same_scope = (
                (content, other)
                for content, other in kept_tokens
                if self.methods.collapse == "collection" or content == row.content_hash
            )
            if any(_jaccard(tokens, other) >= DUPLICATE_JACCARD for _, other in same_scope):
                continue
            kept.append(row)
            kept_tokens.append((row.content_hash, tokens))
        return kept

    def _cosine_scores(
        self, collection: str, vector: np.ndarray, rows: list[ChunkRow], dense: dict[str, float]
    ) -> list[tuple[ChunkRow, float]]:
        missing = [row.chunk_id for row in rows if row.chunk_id not in dense]
        for chunk, stored in self.store.vectors(collection, missing).items():
            dense[chunk] = float(np.dot(stored, vector))
        return [(row, max(0.0, dense.get(row.chunk_id, 0.0))) for row in rows]

    def _hit(self, collection: str, row: ChunkRow, score: float, paths: dict[str, str]) -> Hit:
        if row.content_hash not in paths:
            paths[row.content_hash] = self.manifest.path_of(collection, row.content_hash) or "?"
        return Hit(
            chunk_id=row.chunk_id,
            file=paths[row.content_hash],
            page_start=row.page_start,
            page_end=row.page_end,
            score=round(score, 4),
            text=row.text,
            heading=row.heading,
            page_label=row.page_label,
            content_hash=row.content_hash,
            ocr=row.ocr,
        )


def _joined(texts: list[str]) -> str:
    """Consecutive passages as one text, without the sentences each repeats from the one before.

    The last text is always kept whole at the end, so a caller can cut it off again.
    """
    joined = texts[0]
    for right in texts[1:]:
        start = _overlap_start(joined, right)
        joined = f"{joined}\n\n{right}" if start is None else joined[:start] + right
    return joined


def _overlap_start(left: str, right: str) -> int | None:
    """Where the longest end of ``left`` (at least :data:`_MIN_OVERLAP` characters) that
    ``right`` begins with starts; only places where ``right``'s first characters occur are
    tried."""
    head = right[:_MIN_OVERLAP]
    start = left.find(head, max(0, len(left) - len(right)))
    while start != -1 and start <= len(left) - _MIN_OVERLAP:
        if right.startswith(left[start:]):
            return start
        start = left.find(head, start + 1)
    return None


def _peak(ranked: list[tuple[str, float]]) -> float:
    """How far a leg's best score stands above its other candidates, in standard deviations
    (at least 0.1, so a leg with a signal is never silenced by a flat list)."""
    values = np.array([value for _, value in ranked], dtype=np.float64)
    if len(values) < 3 or values.std() == 0:
        return 1.0
    return float(max(0.1, (values.max() - values.mean()) / values.std()))


def _jaccard(left: set[str], right: set[str]) -> float:
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)
