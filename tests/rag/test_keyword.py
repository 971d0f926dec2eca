"""Keyword tokens that work for Chinese, and keyword search over them: this machine's FTS5 and
a shared library's keyword leg on a Chroma server, with the same assertions."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial

import numpy as np
import pytest

from rag import keyword
from rag.chroma_server import connect
from rag.config import StoreConfig
from rag.manifest import ChunkRow, chunk_id
from rag.shared import ServerVectorStore, SharedIndex
from rag.shared_keyword import ServerKeywords
from rag.types import EmbeddingSpec
from tests.rag.conftest import BACKENDS, store_of


def test_chinese_runs_become_bigrams_and_latin_words_stay() -> None:
    assert keyword.tokenize("自由文化 Free Culture") == ["自由", "由文", "文化", "free", "culture"]
    assert keyword.tokenize("版权法2004年") == ["版权", "权法", "2004", "年"]
    assert keyword.tokenize("Ünïcode, mixed中文text") == ["ünïcode", "mixed", "中文", "text"]


def test_match_expression_quotes_every_token() -> None:
    assert keyword.match_expression('what "is" 版权') == '"版权"'
    assert keyword.match_expression("what is it") == '"what" OR "is" OR "it"'  # nothing else left
    assert keyword.match_expression("   ...  ") is None


Rows = dict[int, tuple[str, str]]
"""``rowid -> (passage, context)``; row ``n`` is the one passage of content ``h<n>``."""


def _id(rowid: int) -> str:
    return chunk_id(f"h{rowid}", 0)


def _local_index(rows: Rows) -> keyword.KeywordIndex:
    """An in-memory FTS5 keyword index of the rows."""
    connection = sqlite3.connect(":memory:")
    connection.execute(keyword.SCHEMA)
    connection.execute(
        "CREATE TABLE chunks (rowid INTEGER PRIMARY KEY, collection TEXT, chunk_id TEXT, "
        "content_hash TEXT)"
    )
    for rowid in rows:
        connection.execute(
            "INSERT INTO chunks VALUES (?, 'c', ?, ?)", (rowid, _id(rowid), f"h{rowid}")
        )
    keyword.add(connection, [(rowid, text, context) for rowid, (text, context) in rows.items()])
    return keyword.LocalKeywords(connection)


def _server_index(rows: Rows, store: StoreConfig) -> keyword.KeywordIndex:
    """The rows published on a Chroma server as a shared library publishes passages (the
    context as the content's identity), searched by the server's keyword leg."""
    assert store.url is not None
    shared = SharedIndex(connect(store), "keyword-test", store.url)
    shared.create("c", EmbeddingSpec("no-model"))
    vectors = ServerVectorStore(shared)
    vectors.create("c", "no-model")
    for rowid, (text, context) in rows.items():
        row = ChunkRow(_id(rowid), f"h{rowid}", 1, 1, None, None, text)
        vectors.upsert("c", [row.chunk_id], np.ones((1, 1), dtype=np.float32), row.content_hash)
        assert shared.store_content("c", row.content_hash, f"/{rowid}.md", [row], context, {})
    return ServerKeywords(shared, lambda: ["c"])


@pytest.fixture(params=BACKENDS)
def index(request: pytest.FixtureRequest) -> Callable[[Rows], keyword.KeywordIndex]:
    """``index(rows)``: the rows in this machine's FTS5, or on a fresh server database."""
    store = store_of(str(request.param), request)
    return _local_index if store is None else partial(_server_index, store=store)


def test_fts_finds_a_chinese_phrase_inside_a_sentence(
    index: Callable[[Rows], keyword.KeywordIndex],
) -> None:
    texts = {1: "我们讨论了版权法的历史和影响。", 2: "今天天气很好，适合散步。", 3: "Tracing JITs."}
    found = index({rowid: (text, "") for rowid, text in texts.items()})
    assert found.search("版权法", "c", 5)[0][0] == _id(1)
    assert found.search("天气", "c", 5)[0][0] == _id(2)
    assert found.search("tracing jit", "c", 5)[0][0] == _id(3)
    assert found.search("版权法", "other-collection", 5) == []


def test_the_document_identity_is_matched_but_can_be_left_out(
    index: Callable[[Rows], keyword.KeywordIndex],
) -> None:
    found = index(
        {
            1: ("Inventories fell as supply chains eased.", "Apple Inc. Form 10-Q 2022"),
            2: ("Inventories fell as supply chains eased.", "Amazon.com Inc. Form 10-Q 2022"),
        }
    )
    assert found.search("Apple inventories", "c", 5)[0][0] == _id(1)
    assert found.search("Amazon inventories", "c", 5)[0][0] == _id(2)
    passages_only = found.search("Apple", "c", 5, with_context=False)
    assert passages_only == []


def test_terms_are_found_as_phrases_in_passages_and_identities(
    index: Callable[[Rows], keyword.KeywordIndex],
) -> None:
    found = index(
        {
            1: ("The Cessna 182P struck trees near the airport.", "Wausau Downtown Airport, WI"),
            2: ("第三季度营收增长。", "苹果公司 2022年 财报"),
            3: ("A Cessna 152 landed long.", "Venice, FL"),
        }
    )
    assert found.passages_mentioning("c", "Cessna 182") == 1  # prefix of 182P
    assert found.passages_mentioning("c", "Cessna 172") == 0
    assert found.passages_mentioning("c", "Cessna") == 2
    assert found.passages_mentioning("c", "Wausau") == 1  # from the identity
    assert found.passages_mentioning("c", "苹果公司") == 1
    assert found.passages_mentioning("c", "特斯拉") == 0
    assert found.contents_mentioning("c", ["Cessna"], ["h1", "h2"]) == {"h1"}
    assert found.contents_mentioning("c", ["Cessna"], []) == set()
    together = ["Cessna", "Wausau"]  # in one passage, the second in its identity
    assert found.contents_mentioning("c", together, ["h1", "h2"]) == {"h1"}
    apart = ["Cessna 152", "Wausau"]  # each in the collection, never in one passage
    assert found.contents_mentioning("c", apart, ["h1", "h2"]) == set()
