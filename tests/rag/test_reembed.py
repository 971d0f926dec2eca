"""Switching a collection's embedding model: real ingest of real files, real Chroma on disk, the
real MiniLM and a second real (tiny, 32-dimensional) sentence-transformers model."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rag.embedder import Embedder
from rag.errors import LibraryError
from rag.indexer import matched_text
from rag.library import Library
from rag.reembed import vectors_name
from rag.store import chroma_name
from rag.types import EmbeddingSpec, SwitchProgress
from tests.conftest import REPO_ROOT
from tests.fixtures_embedders import TINY_DIMENSIONS, tiny_embedder

QUERY = "How does TraceMonkey record a trace tree?"


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> EmbeddingSpec:
    folder = tiny_embedder(tmp_path_factory.mktemp("embedders") / "tiny")
    return EmbeddingSpec(str(folder), "query: ", "passage: ")


@pytest.fixture
def docs(tmp_path: Path, pdf_corpus: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("tracemonkey.pdf", "pdflatex-4-pages.pdf"):
        shutil.copy(pdf_corpus / "clean" / name, folder / name)
    (folder / "notes.md").write_text("# Notes\n\n## Loops\n\nTrace trees and nested loops.\n")
    return folder


def _chroma_collections(library: Library, collection: str) -> set[str]:
    found = library.store.client.list_collections()
    return {c.name for c in found if (c.metadata or {}).get("collection") == collection}


def _chunk_ids(library: Library) -> set[str]:
    rows = library.manifest.connection.execute("SELECT chunk_id FROM chunks")
    return {row[0] for row in rows}


def test_switch_reembeds_the_stored_texts_then_switches_over(
    make_library: Callable[..., Library], docs: Path, tiny_spec: EmbeddingSpec
) -> None:
    library = make_library()
    library.ingest([docs])
    shutil.rmtree(docs)  # the texts come from the manifest: nothing is parsed again
    ids = _chunk_ids(library)

    report = library.switch_embedder("default", tiny_spec)

    assert (report.passages, report.embedded) == (len(ids), len(ids))
    assert library.embedding("default") == tiny_spec
    assert _chroma_collections(library, "default") == {vectors_name("default", tiny_spec)}
    assert library.store.count("default") == len(ids)
    tiny = Embedder(tiny_spec.model, passage_prefix="passage: ")
    rows = library.manifest.connection.execute(
        "SELECT k.chunk_id, c.identity, k.heading_path, k.text, k.text_hash FROM chunks k "
        "JOIN contents c USING (collection, content_hash) ORDER BY k.chunk_id LIMIT 40"
    ).fetchall()
    texts = [matched_text(tiny, identity, heading, text) for _, identity, heading, text, _ in rows]
    stored = library.store.vectors("default", [row[0] for row in rows])
    expected = tiny.embed_passages(texts)
    for (chunk, *_, text_hash), text, vector in zip(rows, texts, expected, strict=True):
        assert stored[chunk].shape == (TINY_DIMENSIONS,)
        assert np.allclose(stored[chunk], vector, atol=1e-5)
        assert text_hash == hashlib.sha1(text.encode()).hexdigest()
    passages = [row[3] for row in rows]
    assert any(t.endswith("\n" + p) for p, t in zip(passages, texts, strict=True)), "title first"
    assert library.search(QUERY, k=3), "the switched collection answers"
    again = library.switch_embedder("default", tiny_spec)
    assert again.embedded == 0


def test_searches_use_the_old_index_until_the_switch_is_complete(
    make_library: Callable[..., Library], docs: Path, tiny_spec: EmbeddingSpec
) -> None:
    library = make_library()
    library.ingest([docs])
    before = [hit.chunk_id for hit in library.search(QUERY)]
    during: list[list[str]] = []
    searcher = make_library(library.index_dir)

    def search_meanwhile(progress: SwitchProgress) -> None:
        if progress.done < progress.total:
            during.append([hit.chunk_id for hit in searcher.search(QUERY)])

    library.switch_embedder("default", tiny_spec, progress=search_meanwhile)

    assert during and all(found == before for found in during)
    assert searcher.embedding("default") == tiny_spec


def _cancel_after_first_document(cancel: threading.Event) -> Callable[[SwitchProgress], None]:
    def report(progress: SwitchProgress) -> None:
        if progress.done:
            cancel.set()

    return report


def test_a_cancelled_switch_keeps_the_old_index_and_resumes(
    make_library: Callable[..., Library], docs: Path, tiny_spec: EmbeddingSpec
) -> None:
    library = make_library()
    library.ingest([docs])
    old = _chroma_collections(library, "default")
    cancel = threading.Event()
    with pytest.raises(LibraryError, match="cancelled; the old index still answers"):
        library.switch_embedder(
            "default", tiny_spec, progress=_cancel_after_first_document(cancel), cancel=cancel
        )
    assert library.embedding("default") == EmbeddingSpec("all-MiniLM-L6-v2")
    assert "TraceMonkey" in library.search(QUERY, k=1)[0].text
    stored = library.store.retargeted("default", vectors_name("default", tiny_spec))
    kept = stored.count("default")
    assert 0 < kept < len(_chunk_ids(library))

    report = library.switch_embedder("default", tiny_spec)

    assert report.embedded == report.passages - kept
    assert library.embedding("default") == tiny_spec
    assert not _chroma_collections(library, "default") & old


def test_an_ingest_after_an_interrupted_switch_restarts_it(
    make_library: Callable[..., Library], docs: Path, tiny_spec: EmbeddingSpec, pdf_corpus: Path
) -> None:
    library = make_library()
    library.ingest([docs])
    cancel = threading.Event()
    with pytest.raises(LibraryError):
        library.switch_embedder(
            "default", tiny_spec, progress=_cancel_after_first_document(cancel), cancel=cancel
        )
    shutil.copy(pdf_corpus / "clean" / "google-doc-document.pdf", docs / "google.pdf")
    library.ingest([docs])

    report = library.switch_embedder("default", tiny_spec)

    assert report.embedded == report.passages == len(_chunk_ids(library))
    assert library.store.count("default") == report.passages


CHILD = """
import os, signal, sys
from pathlib import Path
from rag.config import LibraryConfig
from rag.library import Library
from rag.types import EmbeddingSpec

def die_mid_way(progress):
    if 0 < progress.done < progress.total:
        os.kill(os.getpid(), signal.SIGKILL)

library = Library(Path(sys.argv[1]), LibraryConfig())
library.switch_embedder("default", EmbeddingSpec(sys.argv[2], "query: ", "passage: "),
                        progress=die_mid_way)
print("finished", flush=True)
"""


def test_kill_9_mid_switch_leaves_the_old_index_and_the_next_run_resumes(
    make_library: Callable[..., Library], docs: Path, tiny_spec: EmbeddingSpec
) -> None:
    library = make_library()
    library.ingest([docs])
    before = [hit.chunk_id for hit in library.search(QUERY)]
    library.close()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(library.index_dir), tiny_spec.model],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == -9, child.stderr
    survivor = make_library(library.index_dir)
    assert [hit.chunk_id for hit in survivor.search(QUERY)] == before
    assert chroma_name("default") in _chroma_collections(survivor, "default")

    report = survivor.switch_embedder("default", tiny_spec)

    assert 0 < report.embedded < report.passages
    assert survivor.store.count("default") == report.passages
    assert _chroma_collections(survivor, "default") == {vectors_name("default", tiny_spec)}


def test_a_collection_from_before_prefixes_were_recorded_reads_the_configured_ones(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\nTrace trees and nested loops.\n")
    make_library(query_prefix="q: ").ingest([notes])
    assert make_library(query_prefix="q: ").embedding("default") == EmbeddingSpec(
        "all-MiniLM-L6-v2", "q: ", ""
    ), "recorded when the collection was made"
    library = make_library()
    library.manifest.connection.execute(
        "UPDATE collections SET query_prefix = NULL, passage_prefix = NULL"
    )  # as the migration leaves a collection of an older release
    configured = make_library(query_prefix="q: ", passage_prefix="p: ")
    assert configured.embedding("default") == EmbeddingSpec("all-MiniLM-L6-v2", "q: ", "p: ")
    other = make_library(embedding_model="intfloat/multilingual-e5-small", query_prefix="q: ")
    assert other.embedding("default") == EmbeddingSpec("all-MiniLM-L6-v2")
