"""Keyword search: BM25 over SQLite FTS5, with tokens that work for Chinese as well as English.

FTS5's own tokenizers treat a run of Chinese characters as one word, so a query never matches part
of a sentence. We tokenise before FTS5 sees the text: Latin words stay words (FTS5 stems them with
Porter), and runs of CJK characters become overlapping character bigrams, which needs no dictionary
and works the same for Chinese, Japanese and Korean.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import closing
from typing import Protocol

_WORD = re.compile(r"[^\W_]+")
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_QUERY_TERMS = 64
_QUERY_STOPWORDS = frozenset(
    "a an and are as at be by can did do does for from had has have how i in is it its of on or "
    "that the their there these this to was were what when where which who why will with".split()
)
"""English function words left out of keyword *queries*: they match nearly every chunk, so they
cost a scan of the whole index and add next to nothing to BM25. Documents keep them."""

_MATCHES_THEN_CHUNKS = "chunk_fts CROSS JOIN chunks c ON c.rowid = chunk_fts.rowid"
"""The FTS5 matches first, then their chunk rows: SQLite keeps a CROSS JOIN's order. With a plain
JOIN it may walk every chunk of the collection and run the MATCH once per chunk (31 ms a term at
776 passages, growing with the library, instead of well under 1 ms)."""

TOKENIZER = "porter unicode61 remove_diacritics 2"
SCHEMA = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5("
    f"tokens, context, tokenize = '{TOKENIZER}')"
)
"""``tokens``: the passage; ``context``: its document's identity and heading path
(:mod:`rag.identity`), so "Apple ... Q3 2022 ... inventory" matches an inventory passage of that
filing. BM25 weighs the two columns alike and normalises each by its own length."""


def tokenize(text: str) -> list[str]:
    """Lower-case words, with every CJK run replaced by its character bigrams."""
    tokens: list[str] = []
    for word in _WORD.findall(text.lower()):
        position = 0
        for run in _CJK_RUN.finditer(word):
            if run.start() > position:
                tokens.append(word[position : run.start()])
            chars = run.group()
            if len(chars) == 1:
                tokens.append(chars)
            else:
                tokens.extend(chars[i : i + 2] for i in range(len(chars) - 1))
            position = run.end()
        if position < len(word):
            tokens.append(word[position:])
    return tokens


def stems(texts: Sequence[str]) -> list[list[str]]:
    """Each text's terms exactly as the FTS5 index holds them (our tokens, then FTS5's Porter
    stemming and case and diacritic folding), in order: what a keyword index kept elsewhere
    (:mod:`rag.shared_keyword`) must store and look up to rank as this one does."""
    with closing(sqlite3.connect(":memory:")) as scratch:
        scratch.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = '{TOKENIZER}')")
        scratch.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")
        scratch.executemany(
            "INSERT INTO t(rowid, x) VALUES (?, ?)",
            ((row, " ".join(tokenize(text))) for row, text in enumerate(texts)),
        )
        found: list[list[str]] = [[] for _ in texts]
        for row, term in scratch.execute("SELECT doc, term FROM v ORDER BY doc, offset"):
            found[row].append(term)
    return found


def query_terms(query: str) -> list[str]:
    """The terms a keyword query looks for: content terms, or every token when the query is
    function words only (at most :data:`_QUERY_TERMS`)."""
    return (content_terms(query) or list(dict.fromkeys(tokenize(query))))[:_QUERY_TERMS]


def content_terms(query: str) -> list[str]:
    """The query's distinct tokens without English function words."""
    return [token for token in dict.fromkeys(tokenize(query)) if token not in _QUERY_STOPWORDS]


def has_content_terms(query: str) -> bool:
    """Whether the query has a token that is not a function word (else keyword search is noise)."""
    return bool(content_terms(query))


def match_expression(query: str, with_context: bool = True) -> str | None:
    """An FTS5 query matching any of the query's tokens (BM25 ranks those with more).

    Without ``with_context`` only the passage column is searched, not the document identity.
    """
    terms = query_terms(query)
    if not terms:
        return None
    expression = " OR ".join(f'"{term}"' for term in terms)
    return expression if with_context else f"tokens : ({expression})"


def add(connection: sqlite3.Connection, rows: Iterable[tuple[int, str, str]]) -> None:
    """Index ``(rowid, text, context)`` rows; the rowid is the chunk's row in the manifest."""
    connection.executemany(
        "INSERT INTO chunk_fts(rowid, tokens, context) VALUES (?, ?, ?)",
        (
            (rowid, " ".join(tokenize(text)), " ".join(tokenize(context)))
            for rowid, text, context in rows
        ),
    )


def remove(connection: sqlite3.Connection, rowids: Iterable[int]) -> None:
    connection.executemany("DELETE FROM chunk_fts WHERE rowid = ?", ((rowid,) for rowid in rowids))


def search(
    connection: sqlite3.Connection,
    query: str,
    collection: str,
    limit: int,
    content_hash: str | None = None,
    with_context: bool = True,
) -> list[tuple[str, float]]:
    """Best ``(chunk_id, bm25)`` pairs, best first (FTS5's bm25 is lower-is-better)."""
    expression = match_expression(query, with_context)
    if expression is None:
        return []
    sql = (
        f"SELECT c.chunk_id, bm25(chunk_fts) AS rank FROM {_MATCHES_THEN_CHUNKS} "
        "WHERE chunk_fts MATCH ? AND c.collection = ?"
    )
    parameters: list[object] = [expression, collection]
    if content_hash is not None:
        sql += " AND c.content_hash = ?" + _WITHIN_ROWS
        parameters += [content_hash, *_rows_of(connection, collection, content_hash)]
    sql += " ORDER BY rank LIMIT ?"
    parameters.append(limit)
    return [(str(chunk_id), float(rank)) for chunk_id, rank in connection.execute(sql, parameters)]


def is_prefix_term(tokens: Sequence[str]) -> bool:
    """Whether a salient term's last token also matches longer words: one ending in a digit
    (``Cessna 182`` finds ``Cessna 182P``)."""
    return bool(tokens) and tokens[-1][-1].isdigit()


def _term_expression(term: str) -> str | None:
    """FTS5 query for a salient term: a phrase (the last token may be a prefix when it ends in
    a digit: ``Cessna 182`` finds ``Cessna 182P``); CJK terms are phrases of their bigrams."""
    tokens = tokenize(term)
    if not tokens:
        return None
    return '"' + " ".join(tokens) + '"' + ("*" if is_prefix_term(tokens) else "")


def passages_mentioning(
    connection: sqlite3.Connection,
    collection: str,
    term: str,
    content_hash: str | None = None,
    at_most: int | None = None,
) -> int:
    """How many passages of the collection (document identity included) hold ``term``; with
    ``content_hash``, how many of that document's passages hold it in their own text. Counting
    stops past ``at_most``: a caller asking "more than n?" needs no more."""
    expression = _term_expression(term)
    if expression is None:
        return 0
    sql = f"SELECT 1 FROM {_MATCHES_THEN_CHUNKS} WHERE chunk_fts MATCH ? "
    parameters: list[object] = [expression, collection]
    if content_hash is None:
        sql += "AND c.collection = ?"
    else:
        rows = _rows_of(connection, collection, content_hash)
        parameters = [f"tokens : ({expression})", collection, content_hash, *rows]
        sql += "AND c.collection = ? AND c.content_hash = ?" + _WITHIN_ROWS
    if at_most is not None:
        sql += " LIMIT ?"
        parameters.append(at_most + 1)
    return int(connection.execute(f"SELECT count(*) FROM ({sql})", parameters).fetchone()[0])


_WITHIN_ROWS = " AND chunk_fts.rowid BETWEEN ? AND ?"
"""FTS5 reads only this stretch of each term's row list: a document's passages are stored
together, so matching one document no longer walks every passage of the library holding a
common word (the content filter still decides)."""


def _rows_of(connection: sqlite3.Connection, collection: str, content_hash: str) -> tuple[int, int]:
    """The lowest and highest row of a document's passages."""
    low, high = connection.execute(
        "SELECT min(rowid), max(rowid) FROM chunks WHERE collection = ? AND content_hash = ?",
        (collection, content_hash),
    ).fetchone()
    return (0, -1) if low is None else (int(low), int(high))


def contents_mentioning(
    connection: sqlite3.Connection, collection: str, terms: Sequence[str], contents: Sequence[str]
) -> set[str]:
    """Which of ``contents`` (document content hashes) hold all of ``terms`` in one passage
    (its document identity included)."""
    expressions = [_term_expression(term) for term in terms]
    if not expressions or None in expressions or not contents:
        return set()
    expression = " AND ".join(str(part) for part in expressions)
    rows = connection.execute(
        f"SELECT DISTINCT c.content_hash FROM {_MATCHES_THEN_CHUNKS} "
        "WHERE chunk_fts MATCH ? AND c.collection = ? "
        f"AND c.content_hash IN ({','.join('?' * len(contents))})",
        (expression, collection, *contents),
    )
    return {row[0] for row in rows}


def document_frequencies(
    connection: sqlite3.Connection, terms: Iterable[str]
) -> tuple[dict[str, int], int]:
    """How many indexed chunks hold each term, and how many chunks are indexed (whole library)."""
    connection.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunk_vocab USING fts5vocab(main, chunk_fts, row)"
    )
    frequencies: dict[str, int] = {}
    for term in terms:
        row = connection.execute("SELECT doc FROM temp.chunk_vocab WHERE term = ?", (term,))
        found = row.fetchone()
        frequencies[term] = int(found[0]) if found else 0
    total = int(connection.execute("SELECT count(*) FROM chunks").fetchone()[0])
    return frequencies, total


class KeywordIndex(Protocol):
    """The keyword leg and the term counts the relevance judge asks for, wherever the index
    lives: this machine's FTS5 (:class:`LocalKeywords`) or a shared server
    (:class:`rag.shared_keyword.ServerKeywords`)."""

    def search(
        self,
        query: str,
        collection: str,
        limit: int,
        content_hash: str | None = None,
        with_context: bool = True,
    ) -> list[tuple[str, float]]: ...

    def passages_mentioning(
        self,
        collection: str,
        term: str,
        content_hash: str | None = None,
        at_most: int | None = None,
    ) -> int: ...

    def contents_mentioning(
        self, collection: str, terms: Sequence[str], contents: Sequence[str]
    ) -> set[str]: ...

    def document_frequencies(self, terms: Iterable[str]) -> tuple[dict[str, int], int]: ...


class LocalKeywords:
    """:class:`KeywordIndex` over the manifest's FTS5 table (one connection, one thread)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def search(
        self,
        query: str,
        collection: str,
        limit: int,
        content_hash: str | None = None,
        with_context: bool = True,
    ) -> list[tuple[str, float]]:
        return search(self.connection, query, collection, limit, content_hash, with_context)

    def passages_mentioning(
        self,
        collection: str,
        term: str,
        content_hash: str | None = None,
        at_most: int | None = None,
    ) -> int:
        return passages_mentioning(self.connection, collection, term, content_hash, at_most)

    def contents_mentioning(
        self, collection: str, terms: Sequence[str], contents: Sequence[str]
    ) -> set[str]:
        return contents_mentioning(self.connection, collection, terms, contents)

    def document_frequencies(self, terms: Iterable[str]) -> tuple[dict[str, int], int]:
        return document_frequencies(self.connection, terms)
