"""Evidence out: dense and keyword candidates fused by reciprocal rank, deduplicated, scored.

Ranking uses reciprocal rank fusion (RRF), which needs no score normalisation between BM25 and
cosine similarity. RRF values say nothing about relevance, though, so each hit's ``score`` is the
cosine similarity between the query and the passage (or the cross-encoder's probability when
reranking): a number on a fixed scale, which is what a "not in your documents" threshold needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag import keyword
from rag.embedder import Embedder, resolve_model
from rag.manifest import ChunkRow, Manifest
from rag.store import VectorStore
from rag.types import Hit

RRF_K = 60
"""The usual RRF constant: damps the weight of the very first ranks."""
DUPLICATE_JACCARD = 0.8
"""Passages sharing this share of their tokens count as one (repeated boilerplate, copies)."""
CANDIDATES_PER_HIT = 4
MIN_CANDIDATES = 20


@dataclass(frozen=True)
class RankedLists:
    """The candidate lists of one search, kept for benchmarks that compare the parts."""

    dense: list[tuple[str, float]]
    keyword: list[tuple[str, float]]


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = RRF_K) -> list[str]:
    """Ids ordered by the sum of ``1 / (k + rank)`` over the lists they appear in."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda item: (-scores[item], item))


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
    ) -> None:
        self.manifest, self.store, self.embedder, self.reranker = (
            manifest,
            store,
            embedder,
            reranker,
        )

    def candidates(
        self, query: str, collection: str, limit: int, content_hash: str | None = None
    ) -> tuple[RankedLists, np.ndarray]:
        vector = self.embedder.embed_query(query)
        dense = self.store.query(collection, vector, limit, content_hash)
        lexical = keyword.search(self.manifest.connection, query, collection, limit, content_hash)
        return RankedLists(dense, lexical), vector

    def search(
        self,
        query: str,
        collection: str,
        k: int,
        content_hash: str | None = None,
        mode: str = "hybrid",
    ) -> list[Hit]:
        """Best ``k`` hits; ``mode`` is "hybrid", "dense" or "keyword" (last two: benchmarks)."""
        limit = max(MIN_CANDIDATES, k * CANDIDATES_PER_HIT)
        lists, vector = self.candidates(query, collection, limit, content_hash)
        rankings = {
            "hybrid": [[i for i, _ in lists.dense], [i for i, _ in lists.keyword]],
            "dense": [[i for i, _ in lists.dense]],
            "keyword": [[i for i, _ in lists.keyword]],
        }[mode]
        order = reciprocal_rank_fusion(rankings)
        rows = self.manifest.chunks(collection, order)
        kept = _collapse_duplicates([rows[i] for i in order if i in rows])
        if self.reranker is not None and kept:
            pool = kept[: max(k * 3, 10)]
            scores = self.reranker.scores(query, [row.text for row in pool])
            ranked = sorted(zip(pool, scores, strict=True), key=lambda pair: -pair[1])[:k]
        else:
            ranked = self._cosine_scores(collection, vector, kept[:k], dict(lists.dense))
        paths: dict[str, str] = {}
        return [self._hit(collection, row, score, paths) for row, score in ranked]

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
        )


def _collapse_duplicates(rows: list[ChunkRow]) -> list[ChunkRow]:
    kept: list[ChunkRow] = []
    kept_tokens: list[set[str]] = []
    for row in rows:
        tokens = set(keyword.tokenize(row.text))
        if any(_jaccard(tokens, other) >= DUPLICATE_JACCARD for other in kept_tokens):
            continue
        kept.append(row)
        kept_tokens.append(tokens)
    return kept


def _jaccard(left: set[str], right: set[str]) -> float:
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)
