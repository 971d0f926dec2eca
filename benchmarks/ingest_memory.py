"""Peak memory of a whole ingest (parse, chunk, embed, store, record) by file size.

Run: ``.venv/bin/python -m benchmarks.ingest_memory`` (``--sizes 5 20 80`` in MB, the default;
``--embedding real`` runs MiniLM itself, hours for 80 MB on 2 cores). Each measurement runs in a
fresh process, which reports its peak RSS above its own baseline: the same process after the
library, the embedding model and Chroma are loaded and a one-line note is ingested. The parse
worker's peak is its ``VmHWM``, read every 0.2 s while it lives (``ru_maxrss`` of a child would
count the pages it shared with this process between fork and exec).

The baseline of the same run is the same text cut into 1 MB files in one folder: the vector index
(Chroma's HNSW graph, in this process) and SQLite's caches grow with what a collection holds,
whatever the files; what an ingest holds per file should not. So the ratio that matters is one
file's peak over the split folder's peak, at each size: 1.0 means the size of a file costs
nothing more than the text it adds to the collection.

The text is real: the Chinese news articles of ``../shared/eval/zh-news`` (one paragraph each)
repeated up to the size. ``--embedding stand-in`` (the default) keeps MiniLM's tokenizer, model
and vector size but replaces its forward pass with seeded random unit vectors, as the forward pass
holds one batch at a time whatever the file (``--embedding real`` shows it on the small sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from rag.embedder import Embedder, Vectors

ZH_NEWS = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "zh-news"
SPLIT_MB = 1


def write_text_file(path: Path, megabytes: float) -> None:
    """``megabytes`` of UTF-8 text: the news articles, one paragraph each, over and over."""
    articles = [p.read_text(encoding="utf-8").strip() for p in sorted(ZH_NEWS.glob("*.txt"))]
    target = int(megabytes * 2**20)
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            for article in articles:
                data = article + "\n\n"
                handle.write(data)
                written += len(data.encode())
                if written >= target:
                    break


def write_split_folder(folder: Path, megabytes: int) -> None:
    """The same text as :func:`write_text_file`, as ``SPLIT_MB`` MB files (each one a fresh
    start of the articles, so no two files have the same content)."""
    folder.mkdir()
    for number in range(max(1, megabytes // SPLIT_MB)):
        path = folder / f"part-{number:03d}.txt"
        write_text_file(path, SPLIT_MB)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"Part {number}.\n")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


class _ChildPeak(threading.Thread):
    """The highest ``VmHWM`` of this process's children (the parse worker) while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._done = threading.Event()

    def __enter__(self) -> _ChildPeak:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self.join()

    def run(self) -> None:
        parent = f"PPid:\t{os.getpid()}\n"
        while not self._done.wait(0.2):
            for status in Path("/proc").glob("[0-9]*/status"):
                try:
                    text = status.read_text()
                except OSError:
                    continue
                if parent in text and "VmHWM:" in text:
                    peak = int(text.split("VmHWM:")[1].split()[0]) / 1024
                    self.peak_mb = max(self.peak_mb, peak)


def measure_one(target: Path, embedding: str) -> dict[str, float]:
    """In this process: ingest ``target`` (a file or a folder) into a fresh library."""
    from rag.config import LibraryConfig
    from rag.library import Library

    with tempfile.TemporaryDirectory(prefix="ingest-memory-") as folder:
        work = Path(folder)
        library = Library(work / "index", LibraryConfig())
        try:
            embedder = Embedder("all-MiniLM-L6-v2") if embedding == "real" else StandInEmbedder()
            library.use_embedder(embedder)
            note = work / "warm-up.md"
            note.write_text("# Warm up\n\nOne passage, so that every part is loaded.\n")
            library.ingest([note])
            baseline = _peak_mb()
            started = time.monotonic()
            with _ChildPeak() as worker:
                report = library.ingest([target])
            seconds = time.monotonic() - started
            failed = [result for result in report.results if result.status == "failed"]
            if failed:
                raise SystemExit(f"ingest failed: {failed[0].path}: {failed[0].reason}")
            files = [target] if target.is_file() else list(target.iterdir())
            return {
                "file_mb": sum(path.stat().st_size for path in files) / 2**20,
                "files": len(files),
                "chunks": library.manifest.chunk_count("default") - 1,
                "seconds": seconds,
                "baseline_mb": baseline,
                "peak_above_baseline_mb": _peak_mb() - baseline,
                "worker_peak_mb": worker.peak_mb,
            }
        finally:
            library.close()


class StandInEmbedder(Embedder):
    """MiniLM for everything but its forward pass: its tokenizer (chunking), its limits and its
    vector size; passages get seeded random unit vectors."""

    def __init__(self) -> None:
        super().__init__("all-MiniLM-L6-v2")

    def embed_passages(self, texts: list[str]) -> Vectors:
        rng = np.random.default_rng(len(texts))
        vectors = rng.standard_normal((len(texts), 384)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _start_child(target: Path, embedding: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.ingest_memory", "--one", str(target), embedding],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _child_result(child: subprocess.Popen[str]) -> dict[str, float] | str:
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        return (stderr.strip().splitlines() or ["no output"])[-1]
    result: dict[str, float] = json.loads(stdout.strip().splitlines()[-1])
    return result


def _line(label: str, row: dict[str, float]) -> str:
    return (
        f"{label:<14} {row['file_mb']:>6.1f} MB in {row['files']:>3.0f} files  "
        f"{row['chunks']:>7.0f} chunks  {row['seconds']:>7.1f} s  "
        f"main +{row['peak_above_baseline_mb']:>6.0f} MB over {row['baseline_mb']:.0f} MB  "
        f"parse worker {row['worker_peak_mb']:>5.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 20, 80])
    parser.add_argument("--embedding", choices=("stand-in", "real"), default="stand-in")
    parser.add_argument(
        "--split",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also ingest the same text as 1 MB files (the baseline)",
    )
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="run the split folder beside the one file, not after it (each is its own process,"
        " so memory is unchanged; seconds are then not comparable)",
    )
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(Path(args.one[0]), args.one[1])))
        return
    print(f"embedding: {args.embedding}", flush=True)
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as folder:
            one_file = Path(folder) / f"news-{size}mb.txt"
            split = Path(folder) / f"news-{size}mb"
            write_text_file(one_file, size)
            split_child = None
            if args.split and args.concurrent:
                write_split_folder(split, size)
                split_child = _start_child(split, args.embedding)
            whole = _child_result(_start_child(one_file, args.embedding))
            if isinstance(whole, str):
                print(f"{size:>4} MB  failed: {whole}", flush=True)
            else:
                print(_line("one file", whole), flush=True)
            if not args.split or (isinstance(whole, str) and split_child is None):
                continue
            if split_child is None:
                write_split_folder(split, size)
                split_child = _start_child(split, args.embedding)
            parts = _child_result(split_child)
        if isinstance(parts, str):
            print(f"{size:>4} MB  failed: {parts}")
            continue
        print(_line(f"{SPLIT_MB} MB files", parts))
        if isinstance(whole, dict):
            ratio = whole["peak_above_baseline_mb"] / max(1.0, parts["peak_above_baseline_mb"])
            print(f"{size:>4} MB: one file / split folder = {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
