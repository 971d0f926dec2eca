"""Conversations on disk: one SQLite database (WAL) in the data directory.

Every write commits at once, so a crash or a killed process loses at most the answer text produced
since the last partial save; earlier messages are never rewritten. The store is shared by the CLI
and the TUI's worker threads, hence one connection guarded by a lock.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from assistant.errors import ConversationNotFoundError, StorageError
from assistant.events import Source
from assistant.migrations import migrate
from models.events import Timings, Usage
from rag.manifest import disk_is_full
from rag.permissions import private_database
from rag.sqlite_migrations import immediate

Role = Literal["user", "assistant"]
TITLE_CHARS = 60


@dataclass(frozen=True)
class Message:
    id: str
    conversation_id: str
    role: Role
    text: str
    """What the user typed, or the answer as generated."""
    created_at: float
    prompt_text: str | None = None
    """The user turn exactly as it was sent to the model (evidence included), for KV-cache reuse."""
    model: str | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    incomplete: bool = False
    """An answer cut short by cancel, failure, crash or the token limit."""
    grounded: bool = True
    searched_query: str | None = None
    sources: list[Source] = field(default_factory=list)
    """The passages the answer cites."""
    evidence: list[Source] = field(default_factory=list)
    """Every passage the model was shown for this answer."""
    thinking: str | None = None
    """The model's thinking before this answer: never part of ``text``, so never searched,
    cited or sent back to the model; shown folded."""


@dataclass(frozen=True)
class HistoryWindow:
    """Which earlier turns go into the prompt, and in which form.

    Turns whose question id is below ``start`` are left out. While ``compact`` is false, earlier
    user turns are sent exactly as they were (evidence included); once the history outgrows its
    share it becomes true for good and they are sent as the bare question. Kept per conversation
    so the prompt prefix stays the same from turn to turn until the budget forces a change.
    """

    start: int = 0
    compact: bool = False


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    created_at: float
    updated_at: float
    model: str | None
    collection: str | None
    message_count: int
    snippet: str | None = None
    """For a search: the matching message text around the match."""


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: float
    updated_at: float
    model: str | None
    collection: str | None
    settings: dict[str, Any]
    window: HistoryWindow
    messages: list[Message]


class ConversationStore:
    """Reads and writes conversations in ``path``; creates and migrates the database on open."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        """``busy_timeout_s``: how long a write waits for another process's write to finish."""
        self.path = path
        self._lock = threading.RLock()
        with self._storage_errors():
            try:
                private_database(path)
            except OSError as error:
                raise StorageError(f"{path}: {error.strerror or error}") from None
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            # a deleted conversation's text is overwritten, not left in free pages of the file
            self._conn.execute("PRAGMA secure_delete = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            migrate(self._conn)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _storage_errors(self) -> Iterator[None]:
        """A locked, full or damaged database is one clear message, not a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as error:
            raise StorageError(_storage_problem(self.path, error)) from error

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a failed COMMIT is rolled back too, so the next write can begin."""
        with self._lock, self._storage_errors(), immediate(self._conn) as conn:
            yield conn

    # Conversations

    def create(
        self,
        title: str | None = None,
        *,
        model: str | None = None,
        collection: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> str:
        conversation_id = uuid.uuid4().hex[:12]
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO conversations(id, title, created_at, updated_at, model, collection,"
                " settings) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    title or "",
                    now,
                    now,
                    model,
                    collection,
                    json.dumps(settings or {}),
                ),
            )
        return conversation_id

    def resolve_id(self, id_or_prefix: str) -> str:
        """The full id of the one conversation whose id starts with ``id_or_prefix``."""
        prefix = id_or_prefix.strip()
        if not prefix:
            raise ConversationNotFoundError("no conversation id given")
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM conversations WHERE id LIKE ? ESCAPE '\\' LIMIT 2",
                (_like_literal(prefix) + "%",),
            ).fetchall()
        if not rows:
            raise ConversationNotFoundError(f"{prefix!r} (see `conversations list`)")
        if len(rows) > 1:
            raise ConversationNotFoundError(f"{prefix!r} matches several conversations")
        return str(rows[0]["id"])

    def get(self, id_or_prefix: str) -> Conversation:
        conversation_id = self.resolve_id(id_or_prefix)
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
            message_rows = self._conn.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
            ).fetchall()
            source_rows = self._conn.execute(
                "SELECT s.* FROM sources s JOIN messages m ON m.id = s.message_id"
                " WHERE m.conversation_id = ? ORDER BY s.message_id, s.number",
                (conversation_id,),
            ).fetchall()
        evidence: dict[int, list[tuple[Source, bool]]] = {}
        for source_row in source_rows:
            evidence.setdefault(source_row["message_id"], []).append(
                (_source_from_row(source_row), bool(source_row["cited"]))
            )
        messages = [_message_from_row(r, evidence.get(r["id"], [])) for r in message_rows]
        return Conversation(
            id=row["id"],
            title=row["title"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            model=row["model"],
            collection=row["collection"],
            settings=json.loads(row["settings"]),
            window=HistoryWindow(row["history_start"], bool(row["history_compact"])),
            messages=messages,
        )

    def summaries(self, query: str | None = None) -> list[ConversationSummary]:
        """All conversations, newest first; with ``query``, those whose messages or title match."""
        if query is not None and query.strip():
            return self._search(query.strip())
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)"
                " AS message_count FROM conversations c ORDER BY c.updated_at DESC"
            ).fetchall()
        return [_summary_from_row(row) for row in rows]

    def _search(self, query: str) -> list[ConversationSummary]:
        terms = query.split()
        long_terms = [t for t in terms if len(t) >= 3]
        # Trigram FTS needs three characters per term; shorter terms (two-character Chinese
        # words, say) fall back to a substring scan.
        conditions = ["1 = 1"]
        params: list[str] = []
        if long_terms:
            conditions.append("m.id IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)")
            params.append(" AND ".join('"' + t.replace('"', '""') + '"' for t in long_terms))
        for term in terms:
            if len(term) < 3:
                conditions.append("m.text LIKE ? ESCAPE '\\'")
                params.append("%" + _like_literal(term) + "%")
        sql = (
            "SELECT c.*, m.text AS match_text, (SELECT COUNT(*) FROM messages x"
            " WHERE x.conversation_id = c.id) AS message_count"
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE {' AND '.join(conditions)} ORDER BY c.updated_at DESC, m.id"
        )
        title_sql = (
            "SELECT c.*, NULL AS match_text, (SELECT COUNT(*) FROM messages x"
            " WHERE x.conversation_id = c.id) AS message_count FROM conversations c"
            " WHERE c.title LIKE ? ESCAPE '\\' ORDER BY c.updated_at DESC"
        )
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
            title_rows = self._conn.execute(
                title_sql, ("%" + _like_literal(query) + "%",)
            ).fetchall()
        found: dict[str, ConversationSummary] = {}
        for row in [*rows, *title_rows]:
            if row["id"] not in found:
                snippet = _snippet(row["match_text"], terms) if row["match_text"] else None
                found[row["id"]] = _summary_from_row(row, snippet)
        return sorted(found.values(), key=lambda s: s.updated_at, reverse=True)

    def rename(self, id_or_prefix: str, title: str) -> None:
        conversation_id = self.resolve_id(id_or_prefix)
        with self._write() as conn:
            conn.execute(
                "UPDATE conversations SET title = ?, updated_at = ? WHERE id = ?",
                (title.strip(), time.time(), conversation_id),
            )

    def delete(self, id_or_prefix: str) -> None:
        conversation_id = self.resolve_id(id_or_prefix)
        with self._write() as conn:
            conn.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        self._erase_deleted()

    def _erase_deleted(self) -> None:
        """Leave no copy of deleted text on disk: ``secure_delete`` zeroes the freed pages, the
        search index is merged so its deleted terms go, and the WAL (which still holds the old
        page images) is checkpointed and truncated."""
        with self._lock, self._storage_errors():
            self._conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('optimize')")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def update_settings(
        self,
        conversation_id: str,
        *,
        model: str | None = None,
        collection: str | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Record what the conversation last ran with, so it resumes the same way."""
        with self._write() as conn:
            conn.execute(
                "UPDATE conversations SET model = COALESCE(?, model),"
                " collection = COALESCE(?, collection), settings = COALESCE(?, settings)"
                " WHERE id = ?",
                (
                    model,
                    collection,
                    json.dumps(settings) if settings is not None else None,
                    conversation_id,
                ),
            )

    def set_window(self, conversation_id: str, window: HistoryWindow) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE conversations SET history_start = ?, history_compact = ? WHERE id = ?",
                (window.start, int(window.compact), conversation_id),
            )

    # Messages

    def add_user_message(self, conversation_id: str, text: str) -> str:
        """Save the question before anything else happens; names the conversation if untitled."""
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO messages(conversation_id, role, text, created_at)"
                " VALUES (?, 'user', ?, ?)",
                (conversation_id, text, now),
            )
            conn.execute(
                "UPDATE conversations SET updated_at = ?,"
                " title = CASE WHEN title = '' THEN ? ELSE title END WHERE id = ?",
                (now, _title_from(text), conversation_id),
            )
        return str(cursor.lastrowid)

    def record_sent(
        self, message_id: str, *, prompt_text: str | None, searched_query: str | None
    ) -> None:
        """Store the user turn exactly as it went into the prompt and what was searched."""
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET prompt_text = ?, searched_query = ? WHERE id = ?",
                (prompt_text, searched_query, int(message_id)),
            )

    def start_answer(self, conversation_id: str, *, model: str | None) -> str:
        """An empty answer marked incomplete: whatever happens next, the turn is on disk."""
        now = time.time()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO messages(conversation_id, role, text, created_at, model, incomplete)"
                " VALUES (?, 'assistant', '', ?, ?, 1)",
                (conversation_id, now, model),
            )
            conn.execute(
                "UPDATE conversations SET updated_at = ? WHERE id = ?", (now, conversation_id)
            )
        return str(cursor.lastrowid)

    def save_partial(self, message_id: str, text: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE messages SET text = ? WHERE id = ?", (text, int(message_id)))

    def finish_answer(
        self,
        message_id: str,
        *,
        text: str,
        incomplete: bool,
        grounded: bool,
        usage: Usage | None,
        timings: Timings | None,
        evidence: Sequence[Source],
        cited: Sequence[int],
        thinking: str | None = None,
    ) -> None:
        """Write the final answer, its usage and the passages it was shown and cites, and the
        model's thinking (apart from the answer)."""
        cited_numbers = set(cited)
        with self._write() as conn:
            conn.execute(
                "UPDATE messages SET text = ?, incomplete = ?, grounded = ?, usage = ?,"
                " timings = ?, thinking = ? WHERE id = ?",
                (
                    text,
                    int(incomplete),
                    int(grounded),
                    json.dumps(asdict(usage)) if usage else None,
                    json.dumps(asdict(timings)) if timings else None,
                    thinking or None,
                    int(message_id),
                ),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO sources(message_id, number, file, page, score, text,"
                " chunk_id, heading, cited, ocr) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        int(message_id),
                        s.number,
                        s.file,
                        s.page,
                        s.score,
                        s.text,
                        s.chunk_id,
                        s.heading,
                        int(s.number in cited_numbers),
                        int(s.ocr),
                    )
                    for s in evidence
                ],
            )


def _storage_problem(path: Path, error: sqlite3.DatabaseError) -> str:
    """What went wrong with the database file, and what to do about it, in one line."""
    code = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF
    if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and disk_is_full(path.parent)):
        return (
            f"{path}: the disk is full ({error}); free some space and ask again (the "
            "conversation so far is kept)"
        )
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return f"{path} is damaged ({error}); move it aside to start a new conversation history"
    return f"{path}: {error}"


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def _like_literal(text: str) -> str:
    """``text`` for a LIKE pattern with ``ESCAPE '\\'``: a typed ``%`` or ``_`` is that character,
    not a wildcard."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _snippet(text: str, terms: Sequence[str], width: int = 80) -> str:
    lowered = text.lower()
    positions = [p for p in (lowered.find(t.lower()) for t in terms) if p >= 0]
    start = max(0, min(positions, default=0) - width // 2)
    piece = " ".join(text[start : start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def _source_from_row(row: sqlite3.Row) -> Source:
    """The ``sources`` columns carry the field names of :class:`Source` (``ocr`` as 0 or 1)."""
    values = {column.name: row[column.name] for column in fields(Source)}
    return Source(**{**values, "ocr": bool(values["ocr"])})


def _message_from_row(row: sqlite3.Row, evidence: list[tuple[Source, bool]]) -> Message:
    return Message(
        id=str(row["id"]),
        conversation_id=row["conversation_id"],
        role=row["role"],
        text=row["text"],
        created_at=row["created_at"],
        prompt_text=row["prompt_text"],
        model=row["model"],
        usage=Usage(**json.loads(row["usage"])) if row["usage"] else None,
        timings=Timings(**json.loads(row["timings"])) if row["timings"] else None,
        incomplete=bool(row["incomplete"]),
        grounded=bool(row["grounded"]),
        searched_query=row["searched_query"],
        sources=[source for source, cited in evidence if cited],
        evidence=[source for source, _ in evidence],
        thinking=row["thinking"],
    )


def _summary_from_row(row: sqlite3.Row, snippet: str | None = None) -> ConversationSummary:
    return ConversationSummary(
        id=row["id"],
        title=row["title"] or "(untitled)",
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        model=row["model"],
        collection=row["collection"],
        message_count=row["message_count"],
        snippet=snippet,
    )
