"""The manifest's schema steps under the shared runner (``rag.sqlite_migrations``): named and
recorded, an index of a release that counted them in ``PRAGMA user_version`` adopted without
running its steps again, and every step committed with its record or not at all."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from rag.manifest import MIGRATIONS, Manifest
from rag.sqlite_migrations import Step, migrate


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, timeout=30)
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def _recorded(connection: sqlite3.Connection) -> list[str]:
    return [row[0] for row in connection.execute("SELECT name FROM migrations ORDER BY name")]


def test_a_new_manifest_records_every_step_and_an_open_runs_none_again(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path / "manifest.sqlite3")

    assert _recorded(manifest.connection) == [name for name, _ in MIGRATIONS]
    assert migrate(manifest.connection, MIGRATIONS, adopt_user_version=True) == []
    manifest.close()


@pytest.mark.parametrize("version", [1, len(MIGRATIONS) - 1])
def test_an_index_counted_by_user_version_is_adopted_then_brought_forward(
    tmp_path: Path, version: int
) -> None:
    """Built as that release left it: its steps run, their count in ``user_version``, no
    ``migrations`` table. Running step 1 again would fail (its tables exist) and lose the row."""
    path = tmp_path / "manifest.sqlite3"
    old = _connect(path)
    for _, step in MIGRATIONS[:version]:
        step(old)
    old.execute(
        "INSERT INTO collections (name, embedding_model, created_at) VALUES ('notes', 'm', 0)"
    )
    old.execute(f"PRAGMA user_version = {version}")
    old.close()

    manifest = Manifest(path)

    assert _recorded(manifest.connection) == [name for name, _ in MIGRATIONS]
    assert manifest.collections() == ["notes"]
    assert manifest.drives_under("notes", ["/"]) == {}  # the last step's table is there
    manifest.close()


def _create_notes(connection: sqlite3.Connection) -> None:
    connection.execute("CREATE TABLE notes (text TEXT)")


def _create_tags(connection: sqlite3.Connection) -> None:
    connection.execute("CREATE TABLE tags (name TEXT)")


def _steps(second: Step) -> list[tuple[str, Step]]:
    return [("001_notes", _create_notes), ("002_second", second)]


def test_a_failing_step_leaves_neither_its_changes_nor_its_record(tmp_path: Path) -> None:
    connection = _connect(tmp_path / "db.sqlite3")

    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE tags (name TEXT)")
        raise RuntimeError("killed halfway")

    with pytest.raises(RuntimeError):
        migrate(connection, _steps(half_done))

    assert _recorded(connection) == ["001_notes"]
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "tags" not in tables and "notes" in tables
    assert migrate(connection, _steps(_create_tags)) == ["002_second"]


def test_a_failed_commit_is_rolled_back_and_the_connection_can_go_on(tmp_path: Path) -> None:
    """A deferred foreign key is checked at COMMIT, which then fails with the transaction open."""
    connection = _connect(tmp_path / "db.sqlite3")
    connection.execute("PRAGMA foreign_keys = ON")

    def dangling(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE tagged (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE tags (of INTEGER REFERENCES tagged(id) DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute("INSERT INTO tags VALUES (42)")

    with pytest.raises(sqlite3.IntegrityError):
        migrate(connection, _steps(dangling))

    assert not connection.in_transaction
    assert _recorded(connection) == ["001_notes"]
    assert migrate(connection, _steps(_create_tags)) == ["002_second"]


def test_a_step_another_process_ran_while_this_one_waited_is_not_run_again(
    tmp_path: Path,
) -> None:
    """The other connection runs the step just before this one's BEGIN IMMEDIATE takes the lock
    (SQLite traces a statement before it runs), after this one read the steps recorded."""
    path = tmp_path / "db.sqlite3"
    ours, other = _connect(path), _connect(path)
    migrate(ours, [("000_start", lambda conn: None)])
    runs: list[str] = []

    def counted(conn: sqlite3.Connection) -> None:
        runs.append("002_second")

    steps = [("000_start", lambda conn: None), ("002_second", counted)]

    def the_other_first(statement: str) -> None:
        if statement == "BEGIN IMMEDIATE" and not runs:
            migrate(other, steps)

    ours.set_trace_callback(the_other_first)

    assert migrate(ours, steps) == []
    assert runs == ["002_second"]
    assert _recorded(ours) == ["000_start", "002_second"]
