"""An answer's passages and a refusal's reasons as JSON fields.

``ask --json`` and ``serve`` give tools the same shapes, so a script written against one reads
the other: ``sources`` (cited passages first), ``searched_query``, ``relevant`` and, when the
documents do not cover the question, ``not_mentioned`` and ``collection_covers``.
"""

from __future__ import annotations

from typing import Any

from assistant.events import AnswerFinished, RetrievalFinished, Source


def source_json(source: Source, cited: bool) -> dict[str, Any]:
    return {
        "number": source.number,
        "file": source.file,
        "page": source.page,
        "score": round(source.score, 4),
        "text": source.text,
        "cited": cited,
        "ocr": source.ocr,
    }


def sources_json(finished: AnswerFinished) -> list[dict[str, Any]]:
    """The passages the answer cites, then the others it was given (``cited`` false)."""
    cited = {source.number for source in finished.sources}
    rest = [source for source in finished.evidence if source.number not in cited]
    return [source_json(s, True) for s in finished.sources] + [source_json(s, False) for s in rest]


def retrieval_json(retrieval: RetrievalFinished) -> dict[str, Any]:
    """What was searched and whether it answers the question; if not, what the documents lack
    and what they do cover."""
    fields: dict[str, Any] = {"searched_query": retrieval.query, "relevant": retrieval.relevant}
    if not retrieval.relevant:
        fields["not_mentioned"] = list(retrieval.relevance.missing)
        fields["collection_covers"] = [
            {"title": title, "documents": count} for title, count in retrieval.relevance.covers
        ]
    return fields
