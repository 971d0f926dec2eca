"""``kill -9`` a real ingest at many random points (``make soak``): after every restart the store
and the manifest agree, nothing is duplicated or orphaned, and both SQLite files pass
``PRAGMA integrity_check``. The folder changes between runs, so kills land in updates and
removals too, not only in first-time indexing, and one file is long enough to be stored in many
batches, so kills land between its batches too."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.indexer import recover
from rag.library import Library
from tests.conftest import REPO_ROOT
from tests.rag.test_crash_consistency import CHILD, _assert_consistent, start_ingest

ZH_NEWS = REPO_ROOT.parent / "shared" / "eval" / "zh-news"
KILLS = 24


def _integrity(database: Path) -> str:
    connection = sqlite3.connect(database)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


def _change_folder(folder: Path, rng: random.Random, serial: int) -> None:
    """Edit two files, remove one, add one: the next run updates, removes and indexes."""
    files = sorted(folder.iterdir())
    for path in rng.sample(files, 2):
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"\n\nRevision {serial}: the tracing compiler records a new loop.\n")
    rng.choice(sorted(folder.iterdir())).unlink()
    news = sorted(ZH_NEWS.glob("*.txt"))[100 + serial]
    shutil.copy(news, folder / f"added-{serial}.txt")


def _run_and_kill(index: Path, folder: Path, rng: random.Random) -> bool:
    """Start an ingest and kill it at a random point; False when it finished first."""
    child = start_ingest(CHILD, str(index), str(folder))
    by_lines = rng.random() < 0.5
    target = rng.randint(1, 12) if by_lines else rng.uniform(0.0, 3.0)
    seen, first = 0, None
    assert child.stdout is not None
    for line in child.stdout:
        if line.startswith("finished"):
            child.wait()
            return False
        seen += 1
        first = first or time.monotonic()
        if (by_lines and seen >= target) or (not by_lines and time.monotonic() - first >= target):
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.returncode == -signal.SIGKILL


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("SOAK"), reason="a long run: `make soak`")
def test_kill_9_at_many_random_points(
    make_library: Callable[..., Library], tmp_path: Path, pdf_corpus: Path
) -> None:
    rng = random.Random(12)
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("tracemonkey.pdf", "pdflatex-4-pages.pdf", "google-doc-document.pdf"):
        shutil.copy(pdf_corpus / "clean" / name, folder / name)
    for news in sorted(ZH_NEWS.glob("*.txt"))[:12]:
        shutil.copy(news, folder / news.name)
    long_news = [path.read_text(encoding="utf-8") for path in sorted(ZH_NEWS.glob("*.txt"))[20:50]]
    (folder / "long-news.txt").write_text("\n\n".join(long_news), encoding="utf-8")  # batches
    (folder / "notes.md").write_text("# Notes\n\nTrace trees and nested loops.\n")
    index = tmp_path / "index"
    kills = runs = 0
    while kills < KILLS:
        runs += 1
        assert runs <= 3 * KILLS, f"only {kills} kills landed in {runs} runs"
        if _run_and_kill(index, folder, rng):
            kills += 1
        else:
            _change_folder(folder, rng, runs)
        print(f"run {runs}: {kills} kills so far", flush=True)  # `make soak` shows progress
        assert _integrity(index / "manifest.sqlite3") == "ok"
        assert _integrity(index / "chroma" / "chroma.sqlite3") == "ok"
        restarted = make_library(index, batch_size=8)
        _assert_consistent(restarted)
        recover(restarted.manifest, restarted.store)  # what the next ingest does first
        assert restarted.manifest.pending() == []
        staged = restarted.manifest.connection.execute("SELECT count(*) FROM staged_chunks")
        assert staged.fetchone()[0] == 0
        total = restarted.manifest.connection.execute(
            "SELECT coalesce(SUM(chunks), 0) FROM contents"
        ).fetchone()[0]
        assert restarted.store.count("default") == total  # no duplicates, no orphans
        restarted.close()
    library = make_library(index, batch_size=8)
    report = library.ingest([folder])
    assert report.count("failed") == 0
    _assert_consistent(library)
    recorded = {Path(record.path).name for record in library.documents("default")}
    assert recorded == {path.name for path in folder.iterdir()}
    total = library.manifest.connection.execute("SELECT SUM(chunks) FROM contents").fetchone()[0]
    assert library.store.count("default") == total
