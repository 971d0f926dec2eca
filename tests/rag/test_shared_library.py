"""The library on the embedded store and on a real Chroma server, with the same assertions; then
what only a shared library has: two machines, a server restart mid-ingest, a server that is down.
(``kill -9`` mid-ingest on both backends is in :mod:`tests.rag.test_crash_consistency`.)

"Machines" are libraries with separate local state (their own index folder, so their own
manifest and machine id) using one server database.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from rag.config import LibraryConfig, StoreConfig
from rag.embedder import Embedder
from rag.errors import LibraryError, ServerUnavailableError
from rag.library import Library
from rag.manifest import Manifest, PassageRow
from rag.retriever import Methods
from rag.shared import ServerVectorStore
from rag.shared_manifest import SharedManifest
from rag.types import EmbeddingSpec
from tests.chroma_server import ChromaServer, free_port
from tests.rag.conftest import both_backends, open_library

TOPICS = {
    "piper.md": "# Piper PA-28 accident\n\nThe Piper PA-28 crashed near Tallahassee after fuel "
    "starvation: the fuel selector was set to an empty tank during the approach.",
    "glacier.md": "# Glacier retreat\n\nThe Aletsch glacier lost forty metres of ice thickness; "
    "meltwater lakes formed along its tongue as summers grew warmer.",
    "sourdough.md": "# Sourdough baking\n\nA sourdough starter ferments flour and water with wild "
    "yeast and lactobacilli; the dough rises slowly overnight in the fridge.",
    "tracing.md": "# Trace compilation\n\nA tracing JIT records hot loops as trace trees and "
    "compiles them to machine code, with guards where the types could change.",
}
Make = Callable[..., Library]


@pytest.fixture
def machines(make_library: Make, tmp_path: Path) -> Make:
    """``machines("a")``: a library with its own local state on the backend under test."""

    def make(name: str = "a", **settings: object) -> Library:
        return make_library(tmp_path / f"index-{name}", **settings)

    return make


@pytest.fixture
def folder(tmp_path: Path, pdf_corpus: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in TOPICS.items():
        (docs / name).write_text(text)
    shutil.copy(pdf_corpus / "clean" / "pdflatex-4-pages.pdf", docs)
    return docs


def _names(library: Library, query: str, **options: object) -> list[str]:
    return [Path(hit.file).name for hit in library.search(query, **options)]  # type: ignore[arg-type]


def _assert_consistent(library: Library) -> None:
    """What the manifest records is complete in the store (and, shared, published on the
    server); the store holds nothing that no record or pending row accounts for."""
    manifest, store = library.manifest, library.store
    recorded: set[str] = set()
    for content_hash in manifest.content_hashes("default"):
        ids = {p.chunk_id for p in _recorded(manifest, content_hash)}
        assert ids and set(store.ids_of("default", content_hash)) == ids
        if isinstance(manifest, SharedManifest):
            assert set(manifest.chunks("default", sorted(ids))) == ids, "not published"
        recorded |= ids
    pending = {content_hash for _, content_hash in manifest.pending()}
    if isinstance(manifest, SharedManifest):  # every machine's contents: count the server's
        published = sum(content.chunks for content in manifest.shared.contents("default"))
        assert store.count("default") == _server_passages(library) == published or pending
    else:
        assert store.count("default") == len(recorded) or pending


def _recorded(manifest: Manifest, content_hash: str) -> list[PassageRow]:
    """This machine's own record of a content's passages (not the server's)."""
    return Manifest.passages(manifest, "default", content_hash)


# the same assertions on both backends


@both_backends
def test_ingest_then_search_both_legs_and_refusals(machines: Make, folder: Path) -> None:
    library = machines()
    report = library.ingest([folder])
    assert report.count("indexed") == 5 and report.count("failed") == 0
    assert _names(library, "What caused the Piper accident near Tallahassee?", k=1) == ["piper.md"]
    assert _names(library, "ice loss of an alpine glacier", k=1) == ["glacier.md"]
    library.methods = Methods(legs="keyword")
    assert _names(library, "lactobacilli starter", k=1) == ["sourdough.md"]
    assert _names(library, "fuel selector", k=5) == ["piper.md"]
    library.methods = Methods(legs="dense")
    assert _names(library, "bread that rises overnight", k=1) == ["sourdough.md"]
    library.methods = Methods()
    scoped = library.search("guards", document=str(folder / "tracing.md"))
    assert {Path(hit.file).name for hit in scoped} == {"tracing.md"}
    pdf = library.search("pdflatex", document=str(folder / "pdflatex-4-pages.pdf"), k=1)
    assert pdf and pdf[0].page_start >= 1 and pdf[0].text
    question = "What did the Cessna 172 report say?"
    refusal = library.judge(library.search(question), question)
    assert not refusal.relevant and refusal.mentioned_nowhere and refusal.missing == ("Cessna 172",)
    assert refusal.documents == 5
    question = "Why did the Piper PA-28 crash?"
    assert library.judge(library.search(question), question).relevant
    _assert_consistent(library)


@both_backends
def test_rerun_update_removal_and_manifest(machines: Make, folder: Path) -> None:
    library = machines()
    library.ingest([folder])
    again = library.ingest([folder])
    assert again.count("unchanged") == 5
    (folder / "glacier.md").write_text("# Volcano\n\nBasalt lava flows cooled into columns.")
    (folder / "sourdough.md").unlink()
    shutil.copy(folder / "piper.md", folder / "piper-copy.md")
    report = library.ingest([folder])
    statuses = {Path(r.path).name: r.status for r in report.results}
    assert statuses["glacier.md"] == "updated" and statuses["sourdough.md"] == "removed"
    assert statuses["piper-copy.md"] == "indexed"  # same content: linked, not re-embedded
    library.methods = Methods(legs="keyword")
    assert _names(library, "lactobacilli", k=5) == []
    assert _names(library, "Aletsch meltwater", k=5) == []
    assert _names(library, "basalt columns", k=1) == ["glacier.md"]
    assert library.remove_document(str(folder / "tracing.md")) > 0
    assert _names(library, "trace trees", k=5) == []
    assert {Path(d.path).name for d in library.documents()} == {
        "glacier.md",
        "piper.md",
        "piper-copy.md",
        "pdflatex-4-pages.pdf",
    }
    _assert_consistent(library)


# only a shared library


server_only = pytest.mark.parametrize("backend", ["server"])
"""What only a shared library has: every library of the test on one server database."""


def _server_passages(library: Library) -> int:
    shared = library.shared
    assert shared is not None
    passages = shared.passages_of("default")
    return 0 if passages is None else int(passages.count())


@server_only
def test_two_machines_ingesting_at_once_share_one_library(machines: Make, folder: Path) -> None:
    names = sorted(TOPICS)
    a_folder, b_folder = folder / "a", folder / "b"
    a_folder.mkdir()
    b_folder.mkdir()
    for name in names[:3]:
        shutil.copy(folder / name, a_folder / name)
    for name in names[1:]:  # two files in both folders: the same contents
        shutil.copy(folder / name, b_folder / name)
    a, b = machines("a"), machines("b")
    errors: list[BaseException] = []

    def ingest(library: Library, where: Path) -> None:
        try:
            assert library.ingest([where]).count("failed") == 0
        except BaseException as error:  # handed to the test thread
            errors.append(error)

    threads = [
        threading.Thread(target=ingest, args=(a, a_folder)),
        threading.Thread(target=ingest, args=(b, b_folder)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors
    chunks = {h: len(_recorded(a.manifest, h)) for h in a.manifest.content_hashes("default")}
    chunks |= {h: len(_recorded(b.manifest, h)) for h in b.manifest.content_hashes("default")}
    assert len(chunks) == len(TOPICS)  # four distinct contents
    assert _server_passages(a) == sum(chunks.values()) == a.store.count("default")  # no duplicates
    only_a, only_b = names[0], names[-1]
    assert _names(b, TOPICS[only_a].split("\n\n")[1], k=1) == [only_a]  # B finds what A ingested
    assert _names(a, TOPICS[only_b].split("\n\n")[1], k=1) == [only_b]
    b.methods = Methods(legs="keyword")
    assert _names(b, "Aletsch" if only_a == "glacier.md" else TOPICS[only_a].split()[1], k=1) == [
        only_a
    ]
    c = machines("c")  # a machine that never ingested sees the collection and everything in it
    assert c.collections() == ["default"] and c.judge(c.search("PA-28 fuel"), "PA-28 fuel").relevant
    listed = {Path(record.path).name: record.status for record in c.documents()}
    assert listed == dict.fromkeys(TOPICS, "ok (another machine's)")
    both = names[1]
    a.remove_document(str(a_folder / both))  # B still has it: its passages stay
    assert _names(c, TOPICS[both].split("\n\n")[1], k=1) == [both]
    b.remove_document(str(b_folder / both))  # its last owner: gone for everyone
    c.methods = Methods(legs="keyword")
    assert _names(c, TOPICS[both].split("\n\n")[1], k=5) == []
    _assert_consistent(a)
    _assert_consistent(b)


def test_server_restart_mid_ingest_resumes(
    tmp_path: Path, folder: Path, embedder: Embedder
) -> None:
    server = ChromaServer(tmp_path / "restarted")
    (tmp_path / "restarted").mkdir()
    server.start()
    try:
        store = server.new_database()
        library = Library(tmp_path / "index", LibraryConfig(batch_size=2), server=store)
        library.use_embedder(embedder)

        def kill_after_first_file(progress: object) -> None:
            if getattr(progress, "files_done", 0) >= 1:
                server.kill()

        with pytest.raises(ServerUnavailableError, match=server.url):
            library.ingest([folder], progress=kill_after_first_file)
        kept = len(Manifest.records(library.manifest, "default"))  # this machine's own record
        assert 1 <= kept < 5  # what was stored before the crash is recorded, nothing more
        server.start()
        report = library.ingest([folder])
        assert report.count("failed") == 0 and report.count("unchanged") == kept
        _assert_consistent(library)
        assert library.manifest.pending() == []
        assert _names(library, "sourdough starter", k=1) == ["sourdough.md"]
        library.close()
    finally:
        server.stop()


def test_server_down_is_one_clear_error_and_loses_nothing(
    tmp_path: Path, folder: Path, embedder: Embedder
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    library = Library(tmp_path / "index", LibraryConfig(), server=StoreConfig(url=url))
    library.use_embedder(embedder)
    for action in (lambda: library.ingest([folder]), lambda: library.search("glacier")):
        with pytest.raises(
            ServerUnavailableError, match=f"cannot reach the Chroma server at {url}"
        ):
            action()
    assert not (tmp_path / "index" / "manifest.sqlite3").exists()  # nothing half-recorded
    assert all(path.exists() for path in folder.iterdir())


@server_only
def test_server_keyword_ranking_equals_the_local_index(
    machines: Make, embedder: Embedder, tmp_path: Path
) -> None:
    """Same passages, same BM25: the server's keyword leg ranks and scores as FTS5 does."""
    docs = tmp_path / "keyword-docs"
    docs.mkdir()
    for name, text in TOPICS.items():
        (docs / name).write_text(text + " " + text.split("\n\n")[1])  # term frequencies vary
    (docs / "zh.md").write_text("# 版权法\n\n自由文化运动关心版权法和公共领域。冰川融化。")
    server, local = machines("a"), open_library(tmp_path / "local-index", embedder, None)
    server.ingest([docs])
    local.ingest([docs])
    queries = ["fuel tank", "trace trees guards", "glacier meltwater ice", "版权法", "the and of"]
    for query in queries:
        expected = local.keywords.search(query, "default", 10)
        found = server.keywords.search(query, "default", 10)
        assert [chunk for chunk, _ in found] == [chunk for chunk, _ in expected], query
        assert [s for _, s in found] == pytest.approx([s for _, s in expected], rel=1e-6)
        assert server.keywords.passages_mentioning("default", query) == (
            local.keywords.passages_mentioning("default", query)
        )
    local.close()


@server_only
def test_the_store_is_the_server_whatever_is_opened_first(machines: Make) -> None:
    assert isinstance(machines("a").store, ServerVectorStore)


@server_only
def test_switching_a_shared_collections_embedder_is_refused_and_changes_nothing(
    machines: Make, folder: Path, embedder: Embedder
) -> None:
    """Every machine embeds its questions with the model it read for the collection when it first
    opened it, and nothing on the server would tell it of a switch: re-embedding on one machine
    would leave the others querying new vectors with the old model. So it is refused, by name."""
    a, b = machines("a"), machines("b")
    a.ingest([folder / "tracing.md"])
    other = EmbeddingSpec(embedder.model_name, "query: ", "passage: ")
    with pytest.raises(LibraryError, match="is shared on .*ingest into a new collection"):
        b.switch_embedder("default", other)
    assert b.embedding("default") == a.embedding("default") != other
    assert _names(b, "trace trees of hot loops") == ["tracing.md"]
