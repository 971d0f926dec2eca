"""An index written by the previous release opens, stays searchable, and is re-indexed once.

``data/index-v1`` was written by the first release (manifest schema 1, passages without document
identity) from ``data/index-v1/notes.md`` placed at :data:`V1_SOURCE`, where the test puts it back.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from rag import keyword
from rag.library import Library
from rag.manifest import PASSAGE_FORMAT

FIXTURE = Path(__file__).parent / "data" / "index-v1"
V1_SOURCE = Path("/tmp/minicpm-assistant-v1-fixture/notes.md")


@pytest.fixture
def v1_index(tmp_path: Path) -> Path:
    index = tmp_path / "index"
    shutil.copytree(FIXTURE, index, ignore=shutil.ignore_patterns("notes.md"))
    V1_SOURCE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE / "notes.md", V1_SOURCE)
    return index


def test_the_first_release_index_is_migrated_and_reindexed_once(
    v1_index: Path, make_library: Callable[..., Library]
) -> None:
    with sqlite3.connect(v1_index / "manifest.sqlite3") as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == 1
    library = make_library(v1_index)
    assert library.outdated() == [str(V1_SOURCE)]
    # migrated but not yet re-indexed: the old passages still answer a keyword search
    found = keyword.search(library.manifest.connection, "fuel selector", "default", 5)
    assert found

    hits = library.search("Why did the Cessna lose power after takeoff?", k=3)

    assert library.outdated() == []
    assert "fuel selector" in hits[0].text
    formats = library.manifest.connection.execute("SELECT format, identity FROM contents")
    assert [(fmt, "Field notes" in (identity or "")) for fmt, identity in formats] == [
        (PASSAGE_FORMAT, True)
    ]
    chunks = library.manifest.connection.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert library.store.count("default") == chunks  # old vectors replaced, none orphaned
    assert library.upgrade() is None  # once: nothing left to do


def test_an_outdated_document_whose_file_is_unchanged_is_reindexed_by_ingest(
    v1_index: Path, make_library: Callable[..., Library]
) -> None:
    library = make_library(v1_index)
    report = library.ingest([V1_SOURCE.parent])
    assert [(Path(r.path).name, r.status) for r in report.results] == [("notes.md", "updated")]
    assert library.outdated() == []
    assert library.ingest([V1_SOURCE.parent]).results[0].status == "unchanged"
