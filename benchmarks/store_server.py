"""Shared-library benchmark: one corpus ingested and searched on the embedded store and on a real
Chroma server (``chroma run`` on loopback), in one run, with the ratios server / embedded.

Run: ``.venv/bin/python -m benchmarks.store_server [--corpus DIR] [--queries N]``.

Ingest is timed whole (parse, embed, store) and for its store writes alone (vector upserts and
the manifest commit, which publishes passages and records on the server). Queries are the first
sentence of passages spread over the corpus; each is timed as a full hybrid search, as the
keyword leg alone and as the dense leg alone (the query vector computed beforehand, so it is the
store's time). Both libraries hold the same passages, so their top hits should agree.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from rag.manifest import Manifest
from tests.chroma_server import ChromaServer

CLEAN = Path(__file__).resolve().parent.parent.parent / "shared" / "pdf-corpus" / "clean"
_SENTENCE = re.compile(r"[^.!?]{40,200}[.!?]")


class Stopwatch:
    """Seconds spent inside the methods it wraps."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, owner: Any, name: str) -> None:
        method: Callable[..., Any] = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, name, timed)


def ingest(library: Library, corpus: Path) -> tuple[float, float, int]:
    """Wall seconds, seconds in store writes, passages."""
    writes = Stopwatch()
    writes.wrap(library.store, "upsert")
    for name in ("stage_chunks", "commit_content"):
        if hasattr(library.manifest, name):
            writes.wrap(library.manifest, name)
    started = time.perf_counter()
    report = library.ingest([corpus])
    wall = time.perf_counter() - started
    return wall, writes.seconds, sum(result.chunks for result in report.results)


def queries_from(library: Library, count: int) -> list[str]:
    """The first full sentence of passages spread evenly over the collection."""
    manifest = library.manifest
    contents = sorted(manifest.content_hashes("default"))
    texts = [
        passage.text
        for content in contents
        for passage in Manifest.passages(manifest, "default", content)
    ]
    step = max(1, len(texts) // count)
    found = [m.group().strip() for text in texts[::step] if (m := _SENTENCE.search(text))]
    return found[:count]


def latencies(library: Library, queries: list[str], embedder: Embedder) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"search": [], "keyword leg": [], "dense leg": []}
    for query in queries:
        vector = embedder.embed_query(query)
        started = time.perf_counter()
        library.search(query, k=5)
        timings["search"].append(time.perf_counter() - started)
        started = time.perf_counter()
        library.keywords.search(query, "default", 50)
        timings["keyword leg"].append(time.perf_counter() - started)
        started = time.perf_counter()
        library.store.query("default", vector, 50)
        timings["dense leg"].append(time.perf_counter() - started)
    return timings


def _p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CLEAN)
    parser.add_argument("--queries", type=int, default=40)
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="store-server-bench-"))
    server = ChromaServer(work)
    server.start()
    try:
        embedder = Embedder("all-MiniLM-L6-v2")
        embedder.embed_passages(["loaded before the clock starts"])
        libraries = {
            "embedded": Library(work / "embedded", LibraryConfig()),
            "server": Library(work / "server", LibraryConfig(), server=server.new_database()),
        }
        ingested = {}
        for name, library in libraries.items():
            library.use_embedder(embedder)
            ingested[name] = ingest(library, options.corpus)
        queries = queries_from(libraries["embedded"], options.queries)
        for library in libraries.values():  # warm: first searches open connections, caches
            latencies(library, queries[:3], embedder)
        timed = {name: latencies(lib, queries, embedder) for name, lib in libraries.items()}
        same = sum(
            [h.chunk_id for h in libraries["embedded"].search(q, k=5)]
            == [h.chunk_id for h in libraries["server"].search(q, k=5)]
            for q in queries
        )
        print(f"corpus: {options.corpus} ({ingested['embedded'][2]} passages)")
        print("| ingest | embedded | server | server / embedded |")
        print("|---|---|---|---|")
        (e_wall, e_writes, _), (s_wall, s_writes, _) = ingested["embedded"], ingested["server"]
        print(f"| wall s | {e_wall:.1f} | {s_wall:.1f} | {s_wall / e_wall:.2f} |")
        print(f"| store writes s | {e_writes:.1f} | {s_writes:.1f} | {s_writes / e_writes:.2f} |")
        passages = ingested["embedded"][2]
        print(
            f"| passages/s | {passages / e_wall:.1f} | {passages / s_wall:.1f} | "
            f"{e_wall / s_wall:.2f} |"
        )
        print(f"\n{len(queries)} queries; identical top 5 on both: {same} of {len(queries)}")
        print("| query (ms) | embedded median | p95 | server median | p95 | ratio of medians |")
        print("|---|---|---|---|---|---|")
        for kind in timed["embedded"]:
            e, s = timed["embedded"][kind], timed["server"][kind]
            e_med, s_med = statistics.median(e) * 1000, statistics.median(s) * 1000
            print(
                f"| {kind} | {e_med:.1f} | {_p95(e) * 1000:.1f} | {s_med:.1f} | "
                f"{_p95(s) * 1000:.1f} | {s_med / e_med:.2f} |"
            )
        for library in libraries.values():
            library.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
