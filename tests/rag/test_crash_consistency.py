"""``kill -9`` a real ingest at several points; the store and the manifest must still agree, on
the embedded store and on a Chroma server."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from rag.chunker import chunk_document
from rag.config import StoreConfig
from rag.embedder import Embedder
from rag.indexer import chunk_budget, recover
from rag.library import Library
from rag.loaders import load_document
from rag.shared_manifest import SharedManifest
from tests.conftest import REPO_ROOT
from tests.rag.conftest import both_backends, both_backends_server_in_soak

ZH_NEWS = REPO_ROOT.parent / "shared" / "eval" / "zh-news"

CHILD = """
import sys
from pathlib import Path
from rag.config import LibraryConfig, StoreConfig
from rag.library import Library

server = StoreConfig.model_validate_json(sys.argv[3]) if len(sys.argv) > 3 else None
library = Library(Path(sys.argv[1]), LibraryConfig(batch_size=8), server=server)
def report(progress):
    print(progress.files_done, progress.chunks_done, flush=True)
    sys.stdin.readline()  # in lockstep, wait for the test's go; at once otherwise
library.ingest([Path(sys.argv[2])], progress=report)
print("finished", flush=True)
"""


def start_ingest(child: str, *args: str, lockstep: bool = False) -> subprocess.Popen[str]:
    """``child`` (an ingest script such as :data:`CHILD`: index folder, documents, optionally the
    ``[store]`` as JSON) in a process of its own, its progress lines readable from ``stdout``,
    ready to be killed at any of them.

    In ``lockstep`` the child waits after each line until :func:`kill_at_line` lets it go on, so
    a kill lands exactly there however slowly this process is scheduled.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", child, *args],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE if lockstep else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    return process


def kill_at_line(child: subprocess.Popen[str], line: int) -> bool:
    """Kill a lockstep child while it waits after its ``line``-th progress line; False when it
    finished first."""
    assert child.stdout is not None and child.stdin is not None
    for seen, text in enumerate(child.stdout, start=1):
        if text.startswith("finished"):
            break
        if seen == line:
            child.send_signal(signal.SIGKILL)
            child.wait()
            return True
        child.stdin.write("\n")
        child.stdin.flush()
    child.wait()
    return False


def _assert_consistent(library: Library) -> None:
    """Every recorded document has all its vectors (shared: and its published passages); the
    store holds nothing unrecorded."""
    manifest, store = library.manifest, library.store
    rows = manifest.connection.execute(
        "SELECT content_hash, chunks FROM contents WHERE collection = 'default'"
    ).fetchall()
    recorded_ids: set[str] = set()
    for content_hash, chunks in rows:
        ids = {
            row[0]
            for row in manifest.connection.execute(
                "SELECT chunk_id FROM chunks WHERE content_hash = ?", (content_hash,)
            )
        }
        assert len(ids) == chunks
        assert set(store.ids_of("default", content_hash)) == ids, "recorded but vectors missing"
        if isinstance(manifest, SharedManifest):  # and its passages where other machines read
            assert set(manifest.chunks("default", sorted(ids))) == ids, "recorded, not published"
        recorded_ids |= ids
    for document in manifest.documents_under("default", ["/"]):
        assert manifest.has_content("default", document.content_hash)
    pending = {content_hash for _, content_hash in manifest.pending()}
    unrecorded = store.count("default") - len(recorded_ids)
    assert unrecorded == 0 or pending, "vectors stored that no pending row accounts for"
    staged = {
        row[0] for row in manifest.connection.execute("SELECT content_hash FROM staged_chunks")
    }
    assert staged <= pending, "passages staged that no pending row accounts for"
    assert not staged & {content_hash for content_hash, _ in rows}, "a recorded content is staged"


def _store_args(store: StoreConfig | None) -> list[str]:
    """The child's optional ``[store]`` argument."""
    return [] if store is None else [store.model_dump_json()]


@both_backends
def test_kill_9_at_several_points_then_rerun(
    make_library: Callable[..., Library],
    store: StoreConfig | None,
    tmp_path: Path,
    pdf_corpus: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("tracemonkey.pdf", "pdflatex-4-pages.pdf", "google-doc-document.pdf"):
        shutil.copy(pdf_corpus / "clean" / name, folder / name)
    (folder / "notes.md").write_text("# Notes\n\nTrace trees and nested loops.\n")
    index = tmp_path / "index"
    kills = 0
    for lines_before_kill in (1, 3, 5, 8):
        child = start_ingest(CHILD, str(index), str(folder), *_store_args(store), lockstep=True)
        kills += kill_at_line(child, lines_before_kill)
        inspector = make_library(index, batch_size=8)
        _assert_consistent(inspector)
        inspector.close()
    assert kills >= 3
    library = make_library(index, batch_size=8)
    report = library.ingest([folder])
    assert report.count("failed") == 0
    _assert_consistent(library)
    assert library.manifest.pending() == []
    recorded = {Path(record.path).name for record in library.documents("default")}
    assert recorded == {path.name for path in folder.iterdir()}
    total = library.manifest.connection.execute("SELECT SUM(chunks) FROM contents").fetchone()[0]
    assert library.store.count("default") == total  # no duplicates, no orphans


@both_backends_server_in_soak
def test_kill_9_inside_a_file_of_many_batches_then_rerun(
    make_library: Callable[..., Library],
    store: StoreConfig | None,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    """A file is stored batch by batch. Killed between two batches it is not recorded, what was
    stored of it is swept, and the rerun records exactly its chunks, once.

    On the server in ``make soak`` only (four minutes on two busy cores): the sweep of a cut
    file releases its vectors on the server as the kills of the test above do in every run."""
    folder = tmp_path / "docs"
    folder.mkdir()
    articles = [path.read_text(encoding="utf-8").strip() for path in sorted(ZH_NEWS.glob("*.txt"))]
    long_file = folder / "news.txt"
    long_file.write_text("\n\n".join(articles[:60]) + "\n", encoding="utf-8")
    index = tmp_path / "index"
    for lines_before_kill in (3, 5):
        child = start_ingest(CHILD, str(index), str(folder), *_store_args(store), lockstep=True)
        assert kill_at_line(child, lines_before_kill), "the ingest ended before the kill"
        inspector = make_library(index, batch_size=8)
        connection = inspector.manifest.connection
        assert connection.execute("SELECT count(*) FROM staged_chunks").fetchone()[0] > 0
        assert inspector.documents("default") == [], "recorded before its last batch"
        _assert_consistent(inspector)
        recover(inspector.manifest, inspector.store)
        assert connection.execute("SELECT count(*) FROM staged_chunks").fetchone()[0] == 0
        assert inspector.store.count("default") == 0, "vectors of the cut file left behind"
        inspector.close()
    library = make_library(index, batch_size=8)
    assert library.ingest([folder]).count("indexed") == 1
    _assert_consistent(library)
    budget, overlap = chunk_budget(library.config, embedder)
    expected = chunk_document(load_document(long_file), embedder.token_offsets, budget, overlap)
    assert len(expected) > 4 * 32, "too few batches for a kill to land inside the file"
    texts = library.manifest.connection.execute("SELECT text FROM chunks ORDER BY seq").fetchall()
    assert [text for (text,) in texts] == [chunk.text for chunk in expected]
    assert library.store.count("default") == len(expected)
