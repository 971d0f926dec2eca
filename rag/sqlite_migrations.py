"""Schema migrations of a SQLite file: named steps, and a ``migrations`` table of those that ran.

The one runner of the conversation database (``assistant.migrations``) and the manifest
(``rag.manifest``); it lives in ``rag`` because ``rag`` may not import ``assistant``. Each step and
its record commit together, so a crash leaves a step either done and recorded or not done at all,
and a step is looked up inside the write lock, since another process may have run it while this
one waited. Append new steps at the end; never rename or edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

Step = Callable[[sqlite3.Connection], None]
Steps = Sequence[tuple[str, Step]]


@contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (``BEGIN IMMEDIATE``: the write lock first); rolled back on any
    error, a failed COMMIT included, so the connection can begin the next one."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def migrate(
    connection: sqlite3.Connection, steps: Steps, *, adopt_user_version: bool = False
) -> list[str]:
    """Run the steps this database has not recorded yet, in order; returns their names.

    ``adopt_user_version``: the file may come from a release that counted its steps in
    ``PRAGMA user_version``; its first that many steps are then recorded as run (not run again),
    once, before the rest. ``connection`` must be in autocommit mode (``isolation_level=None``).
    """
    recorded = _recorded(connection)
    if not recorded:  # a new file, or one from before the names
        with immediate(connection):
            connection.execute(_TABLE)
            if adopt_user_version and not connection.execute("SELECT 1 FROM migrations").fetchone():
                counted = int(connection.execute("PRAGMA user_version").fetchone()[0])
                connection.executemany(
                    "INSERT INTO migrations(name, applied_at) VALUES (?, ?)",
                    [(name, time.time()) for name, _ in steps[:counted]],
                )
        recorded = _recorded(connection)
    applied = []
    for name, step in steps:
        if name in recorded:  # read without the lock: an open of a current file takes none
            continue
        with immediate(connection):
            if connection.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                continue  # another process ran it while this one waited for the lock
            step(connection)
            connection.execute(
                "INSERT INTO migrations(name, applied_at) VALUES (?, ?)", (name, time.time())
            )
        applied.append(name)
    return applied


_TABLE = "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"


def _recorded(connection: sqlite3.Connection) -> set[str]:
    """The names of the steps recorded as run (none before the table exists)."""
    table = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    if connection.execute(table).fetchone() is None:
        return set()
    return {row[0] for row in connection.execute("SELECT name FROM migrations")}
