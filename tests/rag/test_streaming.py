"""Large files flow through an ingest in bounded pieces: the parse worker streams a large text
file part by part, the writer stores and records each batch of chunks as it comes, and a file that
fails part way leaves nothing behind. Real parse worker, MiniLM, SQLite and Chroma."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag import loaders
from rag.chunker import chunk_document
from rag.embedder import Embedder
from rag.indexer import chunk_budget
from rag.library import Library
from rag.loaders import (
    DocumentEnd,
    DocumentLoadError,
    DocumentPart,
    ExtractedDocument,
    ExtractedPage,
    collect,
    load_document,
)
from rag.parse_worker import ParseWorker
from rag.types import IngestProgress
from tests.conftest import REPO_ROOT

ZH_NEWS = REPO_ROOT.parent / "shared" / "eval" / "zh-news"
PIECE = 1 << 20
"""The loader's piece size (characters cleaned and sent at a time)."""


def _news_text(megabytes: float, first: int = 0) -> str:
    """Real text: the Chinese news articles from ``first`` on, one paragraph each, repeated up
    to the size."""
    articles = [p.read_text(encoding="utf-8").strip() for p in sorted(ZH_NEWS.glob("*.txt"))]
    parts: list[str] = []
    size = 0
    while size < megabytes * 2**20:
        article = articles[(first + len(parts)) % len(articles)]
        parts.append(article)
        size += len(article.encode()) + 2
    return "\n\n".join(parts)


@pytest.fixture(scope="module")
def large_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Over ``STREAM_TEXT_BYTES``: two long pages (a form feed) of news, the second a copy."""
    text = _news_text(3)
    path = tmp_path_factory.mktemp("large") / "news.txt"
    path.write_text(f"{text}\n\f{text}\n", encoding="utf-8")
    assert path.stat().st_size > loaders.STREAM_TEXT_BYTES
    return path


def test_a_large_text_file_streams_in_bounded_parts(
    large_text: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ParseWorker(timeout_s=120, memory_mb=1024) as worker:
        parts = list(worker.stream(large_text))
    assert isinstance(parts[0], ExtractedDocument) and parts[0].pages == ()
    assert isinstance(parts[-1], DocumentEnd)
    pages = [part for part in parts[1:-1] if isinstance(part, ExtractedPage)]
    assert len(pages) == len(parts) - 2
    numbers = [page.number for page in pages]
    assert numbers == sorted(numbers) and all(numbers.count(n) >= 2 for n in (1, 2))  # cut
    assert all(len(page.text) <= PIECE for page in pages)
    monkeypatch.setattr(loaders, "STREAM_TEXT_BYTES", 1 << 40)  # this process reads it whole
    assert collect(parts) == load_document(large_text)


def test_an_abandoned_stream_stops_the_worker_and_the_next_file_parses(large_text: Path) -> None:
    with ParseWorker(timeout_s=120, memory_mb=1024) as worker:
        stream = worker.stream(large_text)
        next(stream), next(stream)
        stream.close()
        assert worker._process is None
        short = large_text.parent / "short.md"
        short.write_text("# Short\n\nOne line.\n")
        assert worker.parse(short).pages[0].text.startswith("# Short")


def test_a_file_failing_part_way_leaves_no_passages(
    make_library: Callable[..., Library], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of the file are stored before it fails (the drive goes away, the parser dies):
    its vectors and staged passages are swept at once, the failure is recorded, and the other
    files are indexed."""
    folder = tmp_path / "docs"
    folder.mkdir()
    # the chunker reads 512 sentences ahead: the failure comes well after that
    pages = [_news_text(0.004, first=10 * page) for page in range(24)]  # no running lines
    (folder / "long.txt").write_text("\f".join(pages), encoding="utf-8")
    (folder / "short.md").write_text("# Short\n\nThe tracing compiler records loops.\n")
    real_stream = ParseWorker.stream

    def failing_stream(
        self: ParseWorker,
        path: Path,
        password: str | None = None,
        on_ocr: Callable[[int, int], None] | None = None,
    ) -> Iterator[DocumentPart]:
        for part in real_stream(self, path, password, on_ocr):
            if path.name == "long.txt" and isinstance(part, ExtractedPage) and part.number == 20:
                raise DocumentLoadError("cannot read: Input/output error")
            yield part

    monkeypatch.setattr(ParseWorker, "stream", failing_stream)
    library = make_library(batch_size=2)  # 8 chunks a batch
    batches_of_long: list[IngestProgress] = []

    def record(progress: IngestProgress) -> None:
        if (progress.current_file or "").endswith("long.txt"):
            batches_of_long.append(progress)

    report = library.ingest([folder], progress=record)
    results = {Path(r.path).name: (r.status, r.reason) for r in report.results}
    assert results["long.txt"] == ("failed", "cannot read: Input/output error")
    assert results["short.md"][0] == "indexed"
    assert len(batches_of_long) >= 3, "the failure came before batches were stored"
    connection = library.manifest.connection
    assert connection.execute("SELECT count(*) FROM staged_chunks").fetchone()[0] == 0
    assert library.manifest.pending() == []
    recorded = connection.execute("SELECT sum(chunks) FROM contents").fetchone()[0]
    assert library.store.count("default") == recorded == library.manifest.chunk_count("default")
    assert [r.status for r in library.documents() if r.path.endswith("long.txt")] == [
        "failed: cannot read: Input/output error"
    ]


@pytest.mark.soak
@pytest.mark.skipif(not os.environ.get("SOAK"), reason="a long run: `make soak`")
def test_soak_a_large_text_file_is_indexed_as_chunked_whole(
    make_library: Callable[..., Library],
    embedder: Embedder,
    large_text: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library = make_library()
    report = library.ingest([large_text])
    assert report.count("indexed") == 1
    monkeypatch.setattr(loaders, "STREAM_TEXT_BYTES", 1 << 40)
    budget, overlap = chunk_budget(library.config, embedder)
    expected = chunk_document(load_document(large_text), embedder.token_offsets, budget, overlap)
    rows = library.manifest.connection.execute("SELECT text FROM chunks ORDER BY seq").fetchall()
    assert [text for (text,) in rows] == [chunk.text for chunk in expected]
    assert library.store.count("default") == len(expected)
