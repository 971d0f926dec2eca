"""Schema migrations of the conversation database.

An ordered list of named functions, each run once inside its own transaction; the ``migrations``
table records which ran, so an old database is brought forward on open and a new one is built by
the same steps (:mod:`rag.sqlite_migrations`, the manifest's runner too). Append new migrations at
the end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3

from rag.sqlite_migrations import Step as Migration
from rag.sqlite_migrations import migrate as run_steps


def _create_conversations(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            model TEXT,
            collection TEXT,
            settings TEXT NOT NULL DEFAULT '{}',
            history_start INTEGER NOT NULL DEFAULT 0,
            history_compact INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            text TEXT NOT NULL,
            prompt_text TEXT,
            created_at REAL NOT NULL,
            model TEXT,
            usage TEXT,
            timings TEXT,
            incomplete INTEGER NOT NULL DEFAULT 0,
            grounded INTEGER NOT NULL DEFAULT 1,
            searched_query TEXT
        )
        """
    )
    conn.execute("CREATE INDEX messages_by_conversation ON messages(conversation_id, id)")
    conn.execute(
        """
        CREATE TABLE sources (
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            file TEXT NOT NULL,
            page TEXT NOT NULL,
            score REAL NOT NULL,
            text TEXT NOT NULL,
            chunk_id TEXT NOT NULL,
            heading TEXT,
            cited INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (message_id, number)
        )
        """
    )


def _create_message_search(conn: sqlite3.Connection) -> None:
    # Trigram tokens match substrings in any script, so Chinese text (no spaces between words) is
    # searchable as well as English; triggers keep the index in step with the messages table.
    conn.execute(
        "CREATE VIRTUAL TABLE messages_fts USING fts5("
        "text, content='messages', content_rowid='id', tokenize='trigram')"
    )
    conn.execute(
        """
        CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
            INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
        END
        """
    )
    conn.execute(
        """
        CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END
        """
    )
    conn.execute(
        """
        CREATE TRIGGER messages_fts_update AFTER UPDATE OF text ON messages BEGIN
            INSERT INTO messages_fts(messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
            INSERT INTO messages_fts(rowid, text) VALUES (new.id, new.text);
        END
        """
    )
    conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")


def _add_message_thinking(conn: sqlite3.Connection) -> None:
    # The model's thinking before an answer, apart from its text: the text is what is shown as
    # the answer, searched and sent back to the model; the thinking is only shown, folded.
    conn.execute("ALTER TABLE messages ADD COLUMN thinking TEXT")


def _add_source_ocr(conn: sqlite3.Connection) -> None:
    # Whether a cited passage was recognised from a scanned page (OCR), shown with the source.
    conn.execute("ALTER TABLE sources ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0")


MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("001_conversations", _create_conversations),
    ("002_message_search", _create_message_search),
    ("003_message_thinking", _add_message_thinking),
    ("004_source_ocr", _add_source_ocr),
)


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Run the migrations this database has not seen yet; returns their names (the runner is
    :func:`rag.sqlite_migrations.migrate`, shared with the manifest)."""
    return run_steps(conn, MIGRATIONS)
