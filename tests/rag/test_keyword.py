"""Keyword tokens that work for Chinese, and FTS5 search over them."""

from __future__ import annotations

import sqlite3

from rag import keyword


def test_chinese_runs_become_bigrams_and_latin_words_stay() -> None:
    assert keyword.tokenize("自由文化 Free Culture") == ["自由", "由文", "文化", "free", "culture"]
    assert keyword.tokenize("版权法2004年") == ["版权", "权法", "2004", "年"]
    assert keyword.tokenize("Ünïcode, mixed中文text") == ["ünïcode", "mixed", "中文", "text"]


def test_match_expression_quotes_every_token() -> None:
    assert keyword.match_expression('what "is" 版权') == '"版权"'
    assert keyword.match_expression("what is it") == '"what" OR "is" OR "it"'  # nothing else left
    assert keyword.match_expression("   ...  ") is None


def _index(rows: dict[int, tuple[str, str]]) -> sqlite3.Connection:
    """An in-memory keyword index of ``rowid -> (passage, context)``, content hash ``h<rowid>``."""
    connection = sqlite3.connect(":memory:")
    connection.execute(keyword.SCHEMA)
    connection.execute(
        "CREATE TABLE chunks (rowid INTEGER PRIMARY KEY, collection TEXT, chunk_id TEXT, "
        "content_hash TEXT)"
    )
    for rowid in rows:
        connection.execute(
            "INSERT INTO chunks VALUES (?, 'c', ?, ?)", (rowid, f"id{rowid}", f"h{rowid}")
        )
    keyword.add(connection, [(rowid, text, context) for rowid, (text, context) in rows.items()])
    return connection


def test_fts_finds_a_chinese_phrase_inside_a_sentence() -> None:
    texts = {1: "我们讨论了版权法的历史和影响。", 2: "今天天气很好，适合散步。", 3: "Tracing JITs."}
    connection = _index({rowid: (text, "") for rowid, text in texts.items()})
    assert keyword.search(connection, "版权法", "c", 5)[0][0] == "id1"
    assert keyword.search(connection, "天气", "c", 5)[0][0] == "id2"
    assert keyword.search(connection, "tracing jit", "c", 5)[0][0] == "id3"
    assert keyword.search(connection, "版权法", "other-collection", 5) == []


def test_the_document_identity_is_matched_but_can_be_left_out() -> None:
    connection = _index(
        {
            1: ("Inventories fell as supply chains eased.", "Apple Inc. Form 10-Q 2022"),
            2: ("Inventories fell as supply chains eased.", "Amazon.com Inc. Form 10-Q 2022"),
        }
    )
    assert keyword.search(connection, "Apple inventories", "c", 5)[0][0] == "id1"
    assert keyword.search(connection, "Amazon inventories", "c", 5)[0][0] == "id2"
    passages_only = keyword.search(connection, "Apple", "c", 5, with_context=False)
    assert passages_only == []


def test_terms_are_found_as_phrases_in_passages_and_identities() -> None:
    connection = _index(
        {
            1: ("The Cessna 182P struck trees near the airport.", "Wausau Downtown Airport, WI"),
            2: ("第三季度营收增长。", "苹果公司 2022年 财报"),
            3: ("A Cessna 152 landed long.", "Venice, FL"),
        }
    )
    assert keyword.passages_mentioning(connection, "c", "Cessna 182") == 1  # prefix of 182P
    assert keyword.passages_mentioning(connection, "c", "Cessna 172") == 0
    assert keyword.passages_mentioning(connection, "c", "Cessna") == 2
    assert keyword.passages_mentioning(connection, "c", "Wausau") == 1  # from the identity
    assert keyword.passages_mentioning(connection, "c", "苹果公司") == 1
    assert keyword.passages_mentioning(connection, "c", "特斯拉") == 0
    assert keyword.contents_mentioning(connection, "c", ["Cessna"], ["h1", "h2"]) == {"h1"}
    assert keyword.contents_mentioning(connection, "c", ["Cessna"], []) == set()
    together = ["Cessna", "Wausau"]  # in one passage, the second in its identity
    assert keyword.contents_mentioning(connection, "c", together, ["h1", "h2"]) == {"h1"}
    apart = ["Cessna 152", "Wausau"]  # each in the collection, never in one passage
    assert keyword.contents_mentioning(connection, "c", apart, ["h1", "h2"]) == set()
