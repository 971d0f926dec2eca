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


def test_fts_finds_a_chinese_phrase_inside_a_sentence() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute(keyword.SCHEMA)
    connection.execute(
        "CREATE TABLE chunks (rowid INTEGER PRIMARY KEY, collection TEXT, chunk_id TEXT, "
        "content_hash TEXT)"
    )
    texts = {1: "我们讨论了版权法的历史和影响。", 2: "今天天气很好，适合散步。", 3: "Tracing JITs."}
    for rowid, _ in texts.items():
        connection.execute("INSERT INTO chunks VALUES (?, 'c', ?, 'h')", (rowid, f"id{rowid}"))
    keyword.add(connection, texts.items())
    assert keyword.search(connection, "版权法", "c", 5)[0][0] == "id1"
    assert keyword.search(connection, "天气", "c", 5)[0][0] == "id2"
    assert keyword.search(connection, "tracing jit", "c", 5)[0][0] == "id3"
    assert keyword.search(connection, "版权法", "other-collection", 5) == []
