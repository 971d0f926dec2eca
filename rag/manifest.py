"""The manifest: what is indexed, in SQLite, kept consistent with the vector store through crashes.

Tables: ``collections`` (with the embedding model each was built with), ``documents`` (path, size,
mtime, content hash), ``contents`` (one row per distinct content hash that is fully indexed),
``chunks`` (text and page range, ids from content hash and chunk number), ``failures`` and the
keyword index. Write order, which makes a ``kill -9`` at any moment safe:

1. :meth:`Manifest.begin_content` commits a ``pending`` row for the content hash;
2. batch by batch, the vectors are upserted into the store under deterministic ids, then the
   batch's passages are committed to ``staged_chunks`` (:meth:`Manifest.stage_chunks`), which no
   search reads, so a large file never has to be held whole;
3. :meth:`Manifest.commit_content` moves the staged passages into ``chunks``, writes their keyword
   rows, the content and document rows and deletes the pending row in one transaction.

A content hash that stops being referenced is moved back to ``pending`` in the same transaction
that drops its last document, and its vectors are deleted afterwards. :meth:`Manifest.pending`
lists what a crash left behind, so :func:`rag.indexer.recover` deletes exactly those vectors and
staged passages: no duplicates (ids are deterministic), no orphans (pending is swept), and no
document recorded whose chunks are missing (its row commits only after the store has them).
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import sqlite3
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from rag import keyword
from rag.chunker import Chunk
from rag.errors import LibraryError
from rag.permissions import private_database
from rag.sqlite_migrations import Steps, immediate, migrate
from rag.types import DocumentRecord, EmbeddingSpec


def _create_tables(connection: sqlite3.Connection) -> None:
    script = """
        CREATE TABLE collections (
            name TEXT PRIMARY KEY, embedding_model TEXT NOT NULL, created_at REAL NOT NULL);
        CREATE TABLE documents (
            collection TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, content_hash TEXT NOT NULL, indexed_at REAL NOT NULL,
            PRIMARY KEY (collection, path));
        CREATE INDEX documents_by_content ON documents(collection, content_hash);
        CREATE TABLE contents (
            collection TEXT NOT NULL, content_hash TEXT NOT NULL, pages INTEGER NOT NULL,
            chunks INTEGER NOT NULL, title TEXT, warnings TEXT,
            PRIMARY KEY (collection, content_hash));
        CREATE TABLE chunks (
            rowid INTEGER PRIMARY KEY, collection TEXT NOT NULL, chunk_id TEXT NOT NULL,
            content_hash TEXT NOT NULL, seq INTEGER NOT NULL, page_start INTEGER NOT NULL,
            page_end INTEGER NOT NULL, page_label TEXT, heading TEXT, text TEXT NOT NULL,
            text_hash TEXT NOT NULL, UNIQUE (collection, chunk_id));
        CREATE INDEX chunks_by_content ON chunks(collection, content_hash);
        CREATE INDEX chunks_by_text ON chunks(collection, text_hash);
        CREATE TABLE pending (
            collection TEXT NOT NULL, content_hash TEXT NOT NULL,
            PRIMARY KEY (collection, content_hash));
        CREATE TABLE failures (
            collection TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL, reason TEXT NOT NULL, failed_at REAL NOT NULL,
            PRIMARY KEY (collection, path));
        """
    _run_script(connection, script)
    connection.execute(  # the first release's keyword table; migration 2 replaces it
        "CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5("
        "tokens, tokenize = 'porter unicode61 remove_diacritics 2')"
    )


def _add_passage_identity(connection: sqlite3.Connection) -> None:
    """Passages matched with their document's identity and heading path (format 2).

    Contents indexed before keep ``format = 1``: the next ingest, or :meth:`rag.library.Library.
    upgrade`, re-indexes them once. Until then their passages stay searchable: the keyword table
    is rebuilt with an empty context column for them.
    """
    _run_script(
        connection,
        """
        ALTER TABLE contents ADD COLUMN format INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE contents ADD COLUMN identity TEXT;
        ALTER TABLE chunks ADD COLUMN heading_path TEXT;
        DROP TABLE chunk_fts
        """,
    )
    connection.execute(keyword.SCHEMA)
    keyword.add(connection, connection.execute("SELECT rowid, text, '' FROM chunks").fetchall())


def _run_script(connection: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):  # executescript would commit the open transaction
        if statement.strip():
            connection.execute(statement)


def _add_failure_limits(connection: sqlite3.Connection) -> None:
    """Failures remember the parse limits they happened under, so raising ``parse_timeout_s`` or
    ``parse_memory_mb`` retries them; older failures (no limits recorded) are retried once."""
    connection.execute("ALTER TABLE failures ADD COLUMN limits TEXT")


def _add_embedding_record(connection: sqlite3.Connection) -> None:
    """A collection records its embedding prefixes and its Chroma collection, which an embedding
    model switch replaces (``vectors`` NULL: the name :func:`rag.store.chroma_name` gives), and
    the switch under way (JSON, see :class:`PendingSwitch`). Older collections' prefixes are
    unknown (NULL): :meth:`Manifest.embedding` says how they are read."""
    _run_script(
        connection,
        """
        ALTER TABLE collections ADD COLUMN query_prefix TEXT;
        ALTER TABLE collections ADD COLUMN passage_prefix TEXT;
        ALTER TABLE collections ADD COLUMN vectors TEXT;
        ALTER TABLE collections ADD COLUMN switching TEXT
        """,
    )


def _add_staged_chunks(connection: sqlite3.Connection) -> None:
    """Passages of a content still being indexed, committed batch by batch (write order step
    2), so the memory of an ingest does not grow with the file; searches never see them."""
    _run_script(
        connection,
        """
        CREATE TABLE staged_chunks (
            collection TEXT NOT NULL, chunk_id TEXT NOT NULL, content_hash TEXT NOT NULL,
            seq INTEGER NOT NULL, page_start INTEGER NOT NULL, page_end INTEGER NOT NULL,
            page_label TEXT, heading TEXT, text TEXT NOT NULL, text_hash TEXT NOT NULL,
            heading_path TEXT, PRIMARY KEY (collection, chunk_id));
        CREATE INDEX staged_by_content ON staged_chunks(collection, content_hash, seq)
        """,
    )


def _add_ocr_flag(connection: sqlite3.Connection) -> None:
    """Passages remember whether their text was recognised from a page image (OCR), so sources
    can say so. Passages indexed before OCR existed were all read from a text layer: 0."""
    _run_script(
        connection,
        """
        ALTER TABLE chunks ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE staged_chunks ADD COLUMN ocr INTEGER NOT NULL DEFAULT 0
        """,
    )


def _add_drives(connection: sqlite3.Connection) -> None:
    """The device (``st_dev``) each ingested folder and each mount point below one was read
    from, so a folder left behind by an unmounted drive is not taken for its files deleted
    (:meth:`rag.walker.WalkResult.hold_other_drives`). Folders indexed before have none: their
    devices are recorded by their next ingest."""
    connection.execute(
        "CREATE TABLE drives (collection TEXT NOT NULL, path TEXT NOT NULL, "
        "device INTEGER NOT NULL, PRIMARY KEY (collection, path))"
    )


MIGRATIONS: Steps = (
    ("001_tables", _create_tables),
    ("002_failure_limits", _add_failure_limits),
    ("003_passage_identity", _add_passage_identity),
    ("004_embedding_record", _add_embedding_record),
    ("005_staged_chunks", _add_staged_chunks),
    ("006_ocr_flag", _add_ocr_flag),
    ("007_drives", _add_drives),
)
"""Schema changes in order, recorded by name (:mod:`rag.sqlite_migrations`); releases before
the names counted them in ``PRAGMA user_version``, which the first open adopts."""

PASSAGE_FORMAT = 2
"""How passages are built and matched; contents of an older format are re-indexed once."""


def chunk_id(content_hash: str, seq: int) -> str:
    """Stable id of chunk ``seq`` of a content: the same file always gives the same ids."""
    return f"{content_hash[:32]}-{seq:05d}"


@dataclass(frozen=True)
class PendingSwitch:
    """An embedding-model switch under way: the target model, the Chroma collection being
    filled, and the fingerprint of the passages when it began (a change restarts it)."""

    spec: EmbeddingSpec
    vectors: str
    passages: str


@dataclass(frozen=True)
class PassageRow:
    chunk_id: str
    identity: str
    heading_path: str | None
    text: str


@dataclass(frozen=True)
class DocumentRow:
    path: str
    size: int
    mtime_ns: int
    content_hash: str


@dataclass(frozen=True)
class FailureRow:
    path: str
    size: int
    mtime_ns: int
    reason: str
    limits: str | None = None
    """The parse limits in force when it failed (``rag.indexer.parse_limits``)."""


@dataclass(frozen=True)
class ChunkRow:
    chunk_id: str
    content_hash: str
    page_start: int
    page_end: int
    page_label: str | None
    heading: str | None
    text: str
    seq: int = 0
    heading_path: str | None = None
    ocr: bool = False
    """The text was recognised from a page image (see :attr:`rag.chunker.Chunk.ocr`)."""


_DISK_FAILURES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_IOERR}
)
"""SQLite result codes that say the file or the disk failed, not the caller."""


LOW_DISK_BYTES = 64 << 20
"""Free space under which a failed write is taken for a full disk (SQLite reports one as a
"disk I/O error" when it cannot even map its ``-shm`` file, Chroma as an internal error)."""


def disk_is_full(folder: Path) -> bool:
    """Whether the disk holding ``folder`` has (nearly) no space left."""
    try:
        return shutil.disk_usage(folder).free < LOW_DISK_BYTES
    except OSError:
        return False


def index_storage_error(path: Path, error: sqlite3.DatabaseError | OSError) -> LibraryError:
    """The one line for a manifest that cannot be opened or written: what, where, and the fix."""
    if isinstance(error, OSError):
        code = sqlite3.SQLITE_FULL if error.errno == errno.ENOSPC else sqlite3.SQLITE_IOERR
        reason = error.strerror or str(error)
    else:
        code, reason = (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF, str(error)
    if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return LibraryError(
            f"{path} is damaged ({reason}); move the folder {path.parent} aside and ingest your "
            "folders again to rebuild the index"
        )
    if code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and disk_is_full(path.parent)):
        return LibraryError(
            f"cannot write {path}: the disk is full ({reason}); free some space and run the "
            "same command again (nothing indexed so far is lost)"
        )
    return LibraryError(f"cannot use {path} ({reason})")


class Manifest:
    """The SQLite manifest of one index directory (one connection, one thread)."""

    def __init__(self, path: Path) -> None:
        """Open (creating user-only, and migrating) the manifest; a damaged, full or unreadable
        database is a :class:`LibraryError` that names the file and the fix."""
        self.path = path
        try:
            private_database(path)
            self.connection = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
            migrate(self.connection, MIGRATIONS, adopt_user_version=True)
        except (sqlite3.DatabaseError, OSError) as error:
            raise index_storage_error(path, error) from None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back on any error (a failed COMMIT included). A full
        disk or a damaged file is raised as :func:`index_storage_error`."""
        try:
            with immediate(self.connection):
                yield self.connection
        except sqlite3.DatabaseError as error:
            if (getattr(error, "sqlite_errorcode", 0) or 0) & 0xFF not in _DISK_FAILURES:
                raise
            raise index_storage_error(self.path, error) from None

    def close(self) -> None:
        self.connection.close()

    # collections

    def collection_model(self, collection: str) -> str | None:
        row = self.connection.execute(
            "SELECT embedding_model FROM collections WHERE name = ?", (collection,)
        ).fetchone()
        return None if row is None else str(row[0])

    def add_collection(self, collection: str, spec: EmbeddingSpec) -> None:
        with self.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO collections(name, embedding_model, created_at, "
                "query_prefix, passage_prefix) VALUES (?, ?, ?, ?, ?)",
                (collection, spec.model, time.time(), spec.query_prefix, spec.passage_prefix),
            )

    # embedding model (see rag.reembed)

    def embedding(
        self, collection: str, configured: EmbeddingSpec
    ) -> tuple[EmbeddingSpec, str | None] | None:
        """The model and prefixes the collection's vectors were made with, and their Chroma
        collection if a switch named it; read at once, so the two always agree (None: no such
        collection). A collection from before prefixes were recorded reads the configured ones
        when it has the configured model, none otherwise."""
        row = self.connection.execute(
            "SELECT embedding_model, query_prefix, passage_prefix, vectors FROM collections "
            "WHERE name = ?",
            (collection,),
        ).fetchone()
        if row is None:
            return None
        model, query_prefix, passage_prefix, vectors = row
        if query_prefix is None and model == configured.model:
            return EmbeddingSpec(model, configured.query_prefix, configured.passage_prefix), vectors
        return EmbeddingSpec(model, query_prefix or "", passage_prefix or ""), vectors

    def vectors(self, collection: str) -> str | None:
        """The Chroma collection holding the collection's vectors when a switch named it."""
        row = self.connection.execute(
            "SELECT vectors FROM collections WHERE name = ?", (collection,)
        ).fetchone()
        return None if row is None else row[0]

    def pending_switch(self, collection: str) -> PendingSwitch | None:
        row = self.connection.execute(
            "SELECT switching FROM collections WHERE name = ?", (collection,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        values = json.loads(row[0])
        return PendingSwitch(EmbeddingSpec(**values["spec"]), values["vectors"], values["passages"])

    def begin_switch(self, collection: str, switch: PendingSwitch) -> None:
        """Note the switch before any vector of it is stored (a crash leaves it to resume)."""
        with self.transaction() as connection:
            connection.execute(
                "UPDATE collections SET switching = ? WHERE name = ?",
                (json.dumps(asdict(switch)), collection),
            )

    def finish_switch(
        self, collection: str, switch: PendingSwitch, text_hashes: Sequence[tuple[str, str]]
    ) -> None:
        """Make the switch's vectors the collection's, in one transaction: model, prefixes,
        Chroma collection and the chunks' ``(text_hash, chunk_id)`` for the new model."""
        spec = switch.spec
        with self.transaction() as connection:
            connection.executemany(
                "UPDATE chunks SET text_hash = ? WHERE collection = ? AND chunk_id = ?",
                [(text_hash, collection, chunk) for text_hash, chunk in text_hashes],
            )
            connection.execute(
                "UPDATE collections SET embedding_model = ?, query_prefix = ?, "
                "passage_prefix = ?, vectors = ?, switching = NULL WHERE name = ?",
                (spec.model, spec.query_prefix, spec.passage_prefix, switch.vectors, collection),
            )

    def passages(self, collection: str, content_hash: str) -> list[PassageRow]:
        """What a content's chunks were embedded from, in order (see rag.indexer.matched_text)."""
        rows = self.connection.execute(
            "SELECT k.chunk_id, coalesce(c.identity, ''), k.heading_path, k.text FROM chunks k "
            "JOIN contents c ON c.collection = k.collection AND c.content_hash = k.content_hash "
            "WHERE k.collection = ? AND k.content_hash = ? ORDER BY k.seq",
            (collection, content_hash),
        )
        return [PassageRow(*row) for row in rows]

    def passages_fingerprint(self, collection: str) -> str:
        """Changes whenever a chunk of the collection is added, removed or re-made."""
        digest = hashlib.sha1()
        for chunk, text_hash in self.connection.execute(
            "SELECT chunk_id, text_hash FROM chunks WHERE collection = ? ORDER BY chunk_id",
            (collection,),
        ):
            digest.update(f"{chunk} {text_hash}\n".encode())
        return digest.hexdigest()

    def collections(self) -> list[str]:
        return [
            row[0] for row in self.connection.execute("SELECT name FROM collections ORDER BY 1")
        ]

    def remove_collection(self, collection: str) -> None:
        with self.transaction() as connection:
            rowids = [
                row[0]
                for row in connection.execute(
                    "SELECT rowid FROM chunks WHERE collection = ?", (collection,)
                )
            ]
            keyword.remove(connection, rowids)
            tables = (
                "documents",
                "contents",
                "chunks",
                "staged_chunks",
                "pending",
                "failures",
                "drives",
            )
            for table in tables:
                connection.execute(f"DELETE FROM {table} WHERE collection = ?", (collection,))
            connection.execute("DELETE FROM collections WHERE name = ?", (collection,))

    # documents

    def document(self, collection: str, path: str) -> DocumentRow | None:
        row = self.connection.execute(
            "SELECT path, size, mtime_ns, content_hash FROM documents "
            "WHERE collection = ? AND path = ?",
            (collection, path),
        ).fetchone()
        return None if row is None else DocumentRow(*row)

    def documents_under(self, collection: str, roots: Sequence[str]) -> list[DocumentRow]:
        """Documents whose path is one of ``roots`` or lies below one of them."""
        rows = self.connection.execute(
            "SELECT path, size, mtime_ns, content_hash FROM documents WHERE collection = ?",
            (collection,),
        )
        return [DocumentRow(*row) for row in rows if _is_under(row[0], roots)]

    def drives_under(self, collection: str, roots: Sequence[str]) -> dict[str, int]:
        """The recorded device of each folder at or below ``roots`` (see :meth:`record_drives`)."""
        rows = self.connection.execute(
            "SELECT path, device FROM drives WHERE collection = ?", (collection,)
        )
        return {path: device for path, device in rows if _is_under(path, roots)}

    def record_drives(
        self, collection: str, roots: Sequence[str], drives: Mapping[str, int]
    ) -> None:
        """Replace the device records at or below ``roots`` with ``drives`` (path: device)."""
        stale = self.drives_under(collection, roots)
        if stale == drives:
            return  # an ingest that changed nothing writes nothing
        with self.transaction() as connection:
            connection.executemany(
                "DELETE FROM drives WHERE collection = ? AND path = ?",
                [(collection, path) for path in stale if path not in drives],
            )
            connection.executemany(
                "INSERT OR REPLACE INTO drives VALUES (?, ?, ?)",
                [(collection, path, device) for path, device in drives.items()],
            )

    def failure(self, collection: str, path: str) -> FailureRow | None:
        row = self.connection.execute(
            "SELECT path, size, mtime_ns, reason, limits FROM failures "
            "WHERE collection = ? AND path = ?",
            (collection, path),
        ).fetchone()
        return None if row is None else FailureRow(*row)

    def failures_under(self, collection: str, roots: Sequence[str]) -> list[FailureRow]:
        rows = self.connection.execute(
            "SELECT path, size, mtime_ns, reason, limits FROM failures WHERE collection = ?",
            (collection,),
        )
        return [FailureRow(*row) for row in rows if _is_under(row[0], roots)]

    def record_failure(
        self, collection: str, path: str, size: int, mtime_ns: int, reason: str, limits: str
    ) -> None:
        with self.transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO failures(collection, path, size, mtime_ns, reason, "
                "failed_at, limits) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (collection, path, size, mtime_ns, reason, time.time(), limits),
            )

    def forget_failure(self, collection: str, path: str) -> None:
        with self.transaction() as connection:
            connection.execute(
                "DELETE FROM failures WHERE collection = ? AND path = ?", (collection, path)
            )

    def touch(self, collection: str, path: str, size: int, mtime_ns: int) -> None:
        """Record a new mtime for a file whose content hash did not change."""
        with self.transaction() as connection:
            connection.execute(
                "UPDATE documents SET size = ?, mtime_ns = ? WHERE collection = ? AND path = ?",
                (size, mtime_ns, collection, path),
            )

    def records(self, collection: str | None = None) -> list[DocumentRecord]:
        sql = (
            "SELECT d.path, d.collection, d.content_hash, c.pages, c.chunks, d.indexed_at, "
            "c.title, c.warnings FROM documents d JOIN contents c "
            "ON c.collection = d.collection AND c.content_hash = d.content_hash"
        )
        parameters: tuple[str, ...] = ()
        if collection is not None:
            sql += " WHERE d.collection = ?"
            parameters = (collection,)
        records = [
            DocumentRecord(
                path, coll, content_hash, pages, chunks, indexed_at, title, warnings or "ok"
            )
            for path, coll, content_hash, pages, chunks, indexed_at, title, warnings in (
                self.connection.execute(sql + " ORDER BY d.collection, d.path", parameters)
            )
        ]
        failed_sql = "SELECT path, collection, reason, failed_at FROM failures"
        if collection is not None:
            failed_sql += " WHERE collection = ?"
        records += [
            DocumentRecord(path, coll, "", 0, 0, failed_at, None, f"failed: {reason}")
            for path, coll, reason, failed_at in self.connection.execute(
                failed_sql + " ORDER BY collection, path", parameters
            )
        ]
        return records

    # contents and chunks

    def has_content(self, collection: str, content_hash: str) -> bool:
        row = self.connection.execute(
            "SELECT 1 FROM contents WHERE collection = ? AND content_hash = ?",
            (collection, content_hash),
        ).fetchone()
        return row is not None

    def content_hashes(self, collection: str) -> set[str]:
        rows = self.connection.execute(
            "SELECT content_hash FROM contents WHERE collection = ?", (collection,)
        )
        return {row[0] for row in rows}

    def chunk_count(self, collection: str, content_hash: str | None = None) -> int:
        """Passages in the collection, or in one of its documents."""
        if content_hash is None:
            row = self.connection.execute(
                "SELECT count(*) FROM chunks WHERE collection = ?", (collection,)
            ).fetchone()
        else:
            row = self.connection.execute(
                "SELECT count(*) FROM chunks WHERE collection = ? AND content_hash = ?",
                (collection, content_hash),
            ).fetchone()
        return int(row[0])

    def outdated_contents(self, collection: str) -> set[str]:
        """Contents indexed in an older passage format (re-indexed on the next ingest)."""
        rows = self.connection.execute(
            "SELECT content_hash FROM contents WHERE collection = ? AND format < ?",
            (collection, PASSAGE_FORMAT),
        )
        return {row[0] for row in rows}

    def outdated_paths(self, collection: str) -> list[str]:
        """Paths of documents whose content is in an older passage format."""
        rows = self.connection.execute(
            "SELECT d.path FROM documents d JOIN contents c ON c.collection = d.collection "
            "AND c.content_hash = d.content_hash WHERE d.collection = ? AND c.format < ? "
            "ORDER BY d.path",
            (collection, PASSAGE_FORMAT),
        )
        return [row[0] for row in rows]

    def titles(self, collection: str) -> list[tuple[str, int]]:
        """What the collection holds: each document title (its identity's title line, else its
        metadata title, else its file name) with how many documents carry it, most first."""
        rows = self.connection.execute(
            "SELECT coalesce(nullif(substr(c.identity, 1, instr(c.identity || char(10), char(10)) "
            "- 1), ''), c.title), min(d.path) FROM contents c JOIN documents d "
            "ON d.collection = c.collection AND d.content_hash = c.content_hash "
            "WHERE c.collection = ? GROUP BY c.content_hash",
            (collection,),
        )
        counts = Counter(
            " ".join(title.split()) if title and title.strip() else Path(path).name
            for title, path in rows
        )
        return sorted(counts.items(), key=lambda pair: (-pair[1], pair[0]))

    def chunk_ids_by_text(self, collection: str, text_hashes: Sequence[str]) -> dict[str, str]:
        """Chunks already embedded with the same text: ``text_hash -> chunk_id``."""
        found: dict[str, str] = {}
        for start in range(0, len(text_hashes), 500):
            batch = list(text_hashes[start : start + 500])
            marks = ",".join("?" * len(batch))
            rows = self.connection.execute(
                f"SELECT text_hash, chunk_id FROM chunks WHERE collection = ? "
                f"AND text_hash IN ({marks})",
                (collection, *batch),
            )
            found.update(dict(rows))
        return found

    def chunks(self, collection: str, ids: Sequence[str]) -> dict[str, ChunkRow]:
        found: dict[str, ChunkRow] = {}
        for start in range(0, len(ids), 500):
            batch = list(ids[start : start + 500])
            marks = ",".join("?" * len(batch))
            rows = self.connection.execute(
                "SELECT chunk_id, content_hash, page_start, page_end, page_label, heading, text, "
                f"seq, heading_path, ocr FROM chunks WHERE collection = ? "
                f"AND chunk_id IN ({marks})",
                (collection, *batch),
            )
            for chunk, content, start, end, label, heading, text, seq, path, ocr in rows:
                found[chunk] = ChunkRow(
                    chunk, content, start, end, label, heading, text, seq, path, bool(ocr)
                )
        return found

    def path_of(self, collection: str, content_hash: str) -> str | None:
        row = self.connection.execute(
            "SELECT path FROM documents WHERE collection = ? AND content_hash = ? ORDER BY path",
            (collection, content_hash),
        ).fetchone()
        return None if row is None else str(row[0])

    def begin_content(self, collection: str, content_hash: str) -> None:
        """Step 1 of the write order: note that vectors of this content are about to be stored."""
        with self.transaction() as connection:
            connection.execute(
                "INSERT OR IGNORE INTO pending VALUES (?, ?)", (collection, content_hash)
            )
            _delete_staged(connection, collection, content_hash)

    def stage_chunks(
        self,
        collection: str,
        content_hash: str,
        chunks: Sequence[Chunk],
        text_hashes: Sequence[str],
    ) -> None:
        """Step 2, one batch: passages whose vectors the store has, kept until the commit."""
        if not chunks:
            return
        with self.transaction() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO staged_chunks(collection, chunk_id, content_hash, seq, "
                "page_start, page_end, page_label, heading, text, text_hash, heading_path, ocr) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        collection,
                        chunk_id(content_hash, chunk.index),
                        content_hash,
                        chunk.index,
                        chunk.page_start,
                        chunk.page_end,
                        chunk.page_label,
                        chunk.heading,
                        chunk.text,
                        text_hash,
                        chunk.heading_path,
                        chunk.ocr,
                    )
                    for chunk, text_hash in zip(chunks, text_hashes, strict=True)
                ],
            )

    def commit_content(
        self,
        collection: str,
        document: DocumentRow,
        chunks: Sequence[Chunk],
        text_hashes: Sequence[str],
        pages: int,
        title: str | None,
        warnings: str | None,
        identity: str = "",
    ) -> str | None:
        """Step 3: record a fully stored content and point ``document.path`` at it. Its passages
        are those staged (:meth:`stage_chunks`) and ``chunks``, whose vectors the store has too.

        Returns the content hash the path pointed to before, if that content is now unreferenced
        (the caller deletes its vectors, then calls :meth:`content_deleted`).
        """
        self.stage_chunks(collection, document.content_hash, chunks, text_hashes)
        with self.transaction() as connection:
            self._delete_chunks(connection, collection, document.content_hash)
            connection.execute(
                "INSERT INTO chunks(collection, chunk_id, content_hash, seq, page_start, "
                "page_end, page_label, heading, text, text_hash, heading_path, ocr) "
                "SELECT collection, chunk_id, content_hash, seq, page_start, page_end, "
                "page_label, heading, text, text_hash, heading_path, ocr FROM staged_chunks "
                "WHERE collection = ? AND content_hash = ? ORDER BY seq",
                (collection, document.content_hash),
            )
            _delete_staged(connection, collection, document.content_hash)
            count = _add_keywords(connection, collection, document.content_hash, identity)
            connection.execute(
                "INSERT OR REPLACE INTO contents(collection, content_hash, pages, chunks, title, "
                "warnings, format, identity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    collection,
                    document.content_hash,
                    pages,
                    count,
                    title,
                    warnings,
                    PASSAGE_FORMAT,
                    identity,
                ),
            )
            connection.execute(
                "DELETE FROM pending WHERE collection = ? AND content_hash = ?",
                (collection, document.content_hash),
            )
            return self._point(connection, collection, document)

    def link_document(self, collection: str, document: DocumentRow) -> str | None:
        """Point a path at content that is already indexed (a moved or copied file)."""
        with self.transaction() as connection:
            return self._point(connection, collection, document)

    def remove_document(self, collection: str, path: str) -> tuple[str | None, int]:
        """Forget a path; returns the content hash left unreferenced (if any) and its chunks."""
        with self.transaction() as connection:
            row = connection.execute(
                "SELECT content_hash FROM documents WHERE collection = ? AND path = ?",
                (collection, path),
            ).fetchone()
            connection.execute(
                "DELETE FROM failures WHERE collection = ? AND path = ?", (collection, path)
            )
            if row is None:
                return None, 0
            connection.execute(
                "DELETE FROM documents WHERE collection = ? AND path = ?", (collection, path)
            )
            return self._release(connection, collection, row[0])

    def content_deleted(self, collection: str, content_hash: str) -> None:
        """The store no longer holds vectors of this content: drop its pending row."""
        with self.transaction() as connection:
            connection.execute(
                "DELETE FROM pending WHERE collection = ? AND content_hash = ?",
                (collection, content_hash),
            )

    def pending(self) -> list[tuple[str, str]]:
        """``(collection, content_hash)`` pairs whose vectors may be in the store unrecorded."""
        return [(row[0], row[1]) for row in self.connection.execute("SELECT * FROM pending")]

    def drop_unrecorded(self, collection: str, content_hash: str) -> bool:
        """Forget chunk rows of a pending content; False when it turned out fully recorded."""
        with self.transaction() as connection:
            _delete_staged(connection, collection, content_hash)
            if self._referenced(connection, collection, content_hash):
                connection.execute(
                    "DELETE FROM pending WHERE collection = ? AND content_hash = ?",
                    (collection, content_hash),
                )
                return False
            self._delete_chunks(connection, collection, content_hash)
            connection.execute(
                "DELETE FROM contents WHERE collection = ? AND content_hash = ?",
                (collection, content_hash),
            )
            return True

    # helpers inside a transaction

    def _point(
        self, connection: sqlite3.Connection, collection: str, document: DocumentRow
    ) -> str | None:
        previous = connection.execute(
            "SELECT content_hash FROM documents WHERE collection = ? AND path = ?",
            (collection, document.path),
        ).fetchone()
        connection.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            (
                collection,
                document.path,
                document.size,
                document.mtime_ns,
                document.content_hash,
                time.time(),
            ),
        )
        connection.execute(
            "DELETE FROM failures WHERE collection = ? AND path = ?", (collection, document.path)
        )
        if previous is None or previous[0] == document.content_hash:
            return None
        released, _ = self._release(connection, collection, previous[0])
        return released

    def _referenced(
        self, connection: sqlite3.Connection, collection: str, content_hash: str
    ) -> bool:
        row = connection.execute(
            "SELECT 1 FROM documents WHERE collection = ? AND content_hash = ? LIMIT 1",
            (collection, content_hash),
        ).fetchone()
        return row is not None

    def _release(
        self, connection: sqlite3.Connection, collection: str, content_hash: str
    ) -> tuple[str | None, int]:
        """Drop a content nobody references any more; mark it pending until its vectors go."""
        if self._referenced(connection, collection, content_hash):
            return None, 0
        count = self._delete_chunks(connection, collection, content_hash)
        connection.execute(
            "DELETE FROM contents WHERE collection = ? AND content_hash = ?",
            (collection, content_hash),
        )
        connection.execute(
            "INSERT OR IGNORE INTO pending VALUES (?, ?)", (collection, content_hash)
        )
        return content_hash, count

    @staticmethod
    def _delete_chunks(connection: sqlite3.Connection, collection: str, content_hash: str) -> int:
        rowids = [
            row[0]
            for row in connection.execute(
                "SELECT rowid FROM chunks WHERE collection = ? AND content_hash = ?",
                (collection, content_hash),
            )
        ]
        keyword.remove(connection, rowids)
        connection.execute(
            "DELETE FROM chunks WHERE collection = ? AND content_hash = ?",
            (collection, content_hash),
        )
        return len(rowids)


def _delete_staged(connection: sqlite3.Connection, collection: str, content_hash: str) -> None:
    connection.execute(
        "DELETE FROM staged_chunks WHERE collection = ? AND content_hash = ?",
        (collection, content_hash),
    )


_KEYWORD_BATCH = 1000
"""Chunks read per step while their keyword rows are written: bounded memory for any content."""


def _add_keywords(
    connection: sqlite3.Connection, collection: str, content_hash: str, identity: str
) -> int:
    """Keyword rows for a content's chunks (passage, then identity and heading path as context),
    read a bounded batch at a time; returns how many chunks the content has."""
    count = last = 0
    while rows := connection.execute(
        "SELECT rowid, text, ? || char(10) || coalesce(heading_path, '') FROM chunks "
        "WHERE collection = ? AND content_hash = ? AND rowid > ? ORDER BY rowid LIMIT ?",
        (identity, collection, content_hash, last, _KEYWORD_BATCH),
    ).fetchall():
        keyword.add(connection, rows)
        count += len(rows)
        last = rows[-1][0]
    return count


def _is_under(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)
