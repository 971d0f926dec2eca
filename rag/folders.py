"""The folders a collection was built from, remembered so that they can be kept indexed.

Every folder given to an ingest is recorded here (files given one by one are not: their folder
holds other things the user did not ask for). ``ingest --watch`` keeps these folders current, and
removing one removes its documents. The list is this machine's bookkeeping, beside the manifest
in the index folder, in its own small database so that it needs no manifest migration; it is
written under the library's write lock.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from rag.permissions import private_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS folders (
    collection TEXT NOT NULL,
    path TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (collection, path)
)
"""


@dataclass(frozen=True)
class Folder:
    collection: str
    path: str
    """Absolute, symbolic links resolved, as documents below it are recorded."""
    added_at: float


class FolderList:
    """The remembered folders of every collection of one library (``folders.sqlite3``)."""

    def __init__(self, index_dir: Path) -> None:
        path = private_database(index_dir / "folders.sqlite3")
        self._connection = sqlite3.connect(path, check_same_thread=False)
        with self._connection:
            self._connection.execute(_SCHEMA)

    def add(self, collection: str, path: str) -> None:
        """Remember ``path`` (already resolved) for ``collection``; a known folder is kept as is."""
        with self._connection:
            self._connection.execute(
                "INSERT OR IGNORE INTO folders VALUES (?, ?, ?)", (collection, path, time.time())
            )

    def remove(self, collection: str, path: str) -> bool:
        """Forget one folder; False when it was not remembered."""
        with self._connection:
            cursor = self._connection.execute(
                "DELETE FROM folders WHERE collection = ? AND path = ?", (collection, path)
            )
        return cursor.rowcount > 0

    def forget_collection(self, collection: str) -> None:
        with self._connection:
            self._connection.execute("DELETE FROM folders WHERE collection = ?", (collection,))

    def of(self, collection: str | None = None) -> list[Folder]:
        """The remembered folders, of one collection or of all, in path order."""
        query = "SELECT collection, path, added_at FROM folders"
        rows = (
            self._connection.execute(query + " ORDER BY collection, path")
            if collection is None
            else self._connection.execute(
                query + " WHERE collection = ? ORDER BY path", (collection,)
            )
        )
        return [Folder(*row) for row in rows]

    def close(self) -> None:
        self._connection.close()
