"""The conversation store on a real SQLite file: persistence, search, migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from assistant.conversations import ConversationStore, HistoryWindow
from assistant.errors import ConversationNotFoundError, StorageError
from assistant.events import Source
from assistant.migrations import MIGRATIONS
from models.events import Timings, Usage


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "conversations.sqlite3"


def _source(number: int) -> Source:
    return Source(number, "paper.pdf", str(number), 0.5, f"passage {number}", f"c{number}")


def test_messages_sources_and_settings_survive_reopening(db: Path) -> None:
    store = ConversationStore(db)
    conversation_id = store.create(model="m", collection="papers", settings={"document": None})
    question = store.add_user_message(conversation_id, "What is a trace tree?")
    store.record_sent(
        question, prompt_text="[1] ...\nQuestion: What is", searched_query="trace tree"
    )
    answer = store.start_answer(conversation_id, model="m")
    store.finish_answer(
        answer,
        text="A tree of traces [2].",
        incomplete=False,
        grounded=True,
        usage=Usage(100, 40, 7),
        timings=Timings(0.5, 80.0, 12.0, 1.1),
        evidence=[_source(1), _source(2)],
        cited=[2],
    )
    store.set_window(conversation_id, HistoryWindow(start=3, compact=True))
    store.close()

    conversation = ConversationStore(db).get(conversation_id)
    assert conversation.title == "What is a trace tree?"
    assert (conversation.model, conversation.collection) == ("m", "papers")
    assert conversation.window == HistoryWindow(3, True)
    user, assistant = conversation.messages
    assert user.prompt_text == "[1] ...\nQuestion: What is"
    assert user.searched_query == "trace tree"
    assert assistant.text == "A tree of traces [2]."
    assert assistant.usage == Usage(100, 40, 7)
    assert assistant.timings == Timings(0.5, 80.0, 12.0, 1.1)
    assert [s.number for s in assistant.sources] == [2]
    assert [s.number for s in assistant.evidence] == [1, 2]
    assert not assistant.incomplete


def test_partial_answer_stays_incomplete_until_finished(db: Path) -> None:
    store = ConversationStore(db)
    conversation_id = store.create()
    store.add_user_message(conversation_id, "question")
    answer = store.start_answer(conversation_id, model=None)
    store.save_partial(answer, "half an ans")
    reopened = ConversationStore(db).get(conversation_id)
    assert reopened.messages[-1].text == "half an ans"
    assert reopened.messages[-1].incomplete


def test_full_text_search_in_english_and_chinese(db: Path) -> None:
    store = ConversationStore(db)
    english = store.create()
    store.add_user_message(english, "How does TraceMonkey record loops?")
    chinese = store.create()
    store.add_user_message(chinese, "跟踪编译器如何处理循环？")
    other = store.create("Cooking")
    store.add_user_message(other, "How long do I boil an egg?")

    assert [s.id for s in store.summaries("tracemonkey loops")] == [english]
    assert [s.id for s in store.summaries("编译器")] == [chinese]
    assert [s.id for s in store.summaries("循环")] == [chinese]  # two characters: substring scan
    assert [s.id for s in store.summaries("cooking")] == [other]  # titles match too
    assert store.summaries("nothing like this") == []
    match = store.summaries("TraceMonkey")[0]
    assert match.snippet is not None and "TraceMonkey" in match.snippet


def test_search_terms_with_quotes_do_not_break_the_query(db: Path) -> None:
    store = ConversationStore(db)
    conversation_id = store.create()
    store.add_user_message(conversation_id, 'he said "hello" there')
    assert [s.id for s in store.summaries('"hello"')] == [conversation_id]


def test_underscore_and_percent_in_a_search_are_literal(db: Path) -> None:
    store = ConversationStore(db)
    literal = store.create("rate_limit at 50% off")
    store.add_user_message(literal, "see x_ and 5% here")
    other = store.create("rate-limit at 500 off")
    store.add_user_message(other, "see xy and 55 here")

    def found(query: str) -> list[str]:
        return [s.id for s in store.summaries(query)]

    assert found("x_") == [literal], "a short term: a substring scan of the messages"
    assert found("5%") == [literal]
    assert found("rate_limit") == [literal], "titles"
    assert found("50%") == [literal]
    with pytest.raises(ConversationNotFoundError, match="see `conversations list`"):
        store.resolve_id("%")
    with pytest.raises(ConversationNotFoundError, match="see `conversations list`"):
        store.resolve_id("_")


def test_ids_resolve_by_unique_prefix(db: Path) -> None:
    store = ConversationStore(db)
    conversation_id = store.create("one")
    assert store.get(conversation_id[:6]).id == conversation_id
    with pytest.raises(ConversationNotFoundError):
        store.get("zzzz")


def test_rename_and_delete(db: Path) -> None:
    store = ConversationStore(db)
    conversation_id = store.create()
    store.add_user_message(conversation_id, "first question names the conversation")
    assert store.get(conversation_id).title == "first question names the conversation"
    store.rename(conversation_id, "Renamed")
    assert store.get(conversation_id).title == "Renamed"
    store.delete(conversation_id)
    assert store.summaries() == []
    assert store.summaries("first") == []  # the search index forgets deleted messages


def test_migrations_run_once_and_are_recorded(db: Path) -> None:
    ConversationStore(db).close()
    ConversationStore(db).close()
    conn = sqlite3.connect(db)
    names = [row[0] for row in conn.execute("SELECT name FROM migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_database_from_an_older_version_is_brought_forward(db: Path) -> None:
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    first_name, first = MIGRATIONS[0]
    first(conn)
    conn.execute("INSERT INTO migrations VALUES (?, 0)", (first_name,))
    conn.execute(
        "INSERT INTO conversations(id, title, created_at, updated_at) VALUES ('old', 't', 0, 0)"
    )
    conn.execute(
        "INSERT INTO messages(conversation_id, role, text, created_at)"
        " VALUES ('old', 'user', 'an old question about loops', 0)"
    )
    conn.close()

    store = ConversationStore(db)
    assert store.get("old").messages[0].text == "an old question about loops"
    assert store.get("old").messages[0].thinking is None  # the column added by 003
    store.add_user_message("old", "a new question about loops")
    assert len(store.get("old").messages) == 2
    assert [s.id for s in store.summaries("new question")] == ["old"]
    assert [s.id for s in store.summaries("old question")] == ["old"]  # indexed by the migration


def test_a_damaged_database_is_a_clear_error(db: Path) -> None:
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="not a database"):
        ConversationStore(db)


def test_a_write_blocked_by_another_process_fails_clearly_and_the_next_one_works(
    db: Path,
) -> None:
    store = ConversationStore(db, busy_timeout_s=0.05)
    conversation_id = store.create()
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(StorageError, match="locked"):
        store.add_user_message(conversation_id, "Is anyone writing?")
    other.execute("ROLLBACK")
    other.close()
    store.add_user_message(conversation_id, "Now?")
    assert [m.text for m in store.get(conversation_id).messages] == ["Now?"]
