"""Peak memory of preparing one large text file (parse in the worker, then chunk), by file size.

Run: ``.venv/bin/python -m benchmarks.ingest_memory`` (a few minutes on 2 cores); ``--sizes 1 4``
picks the sizes in MB. Each size runs in a fresh process, which reports its peak RSS above its own
baseline (the same process after imports and the tokenizer, before the file: the ratio's base)
and the parse worker's peak RSS. The files are real text: the Chinese news articles of
``../shared/eval/zh-news`` (one paragraph each) repeated up to the size, written to a temporary
folder. Embedding is left out: its memory is per batch, and 64 MB of text is hours of MiniLM here.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ZH_NEWS = Path(__file__).resolve().parent.parent.parent / "shared" / "eval" / "zh-news"
CHUNK_TOKENS, OVERLAP = 256, 32


def write_text_file(path: Path, megabytes: int) -> None:
    """``megabytes`` of UTF-8 text: the news articles, one paragraph each, over and over."""
    articles = [p.read_text(encoding="utf-8").strip() for p in sorted(ZH_NEWS.glob("*.txt"))]
    target = megabytes * 2**20
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            for article in articles:
                data = article + "\n\n"
                handle.write(data)
                written += len(data.encode())
                if written >= target:
                    break


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _worker_peak_mb(pid: int) -> float:
    """The parse worker's peak RSS since it started (``VmHWM``, which ``exec`` resets; its
    ``ru_maxrss`` would count the pages it shared with this process between fork and exec)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def measure_one(path: Path) -> dict[str, float]:
    """In this process: parse ``path`` in the worker and chunk it, as an ingest prepares it."""
    from rag.chunker import chunk_document
    from rag.embedder import Embedder
    from rag.parse_worker import ParseWorker

    embedder = Embedder("all-MiniLM-L6-v2")
    embedder.token_offsets(["warm up the tokenizer"])
    baseline = _peak_mb()
    started = time.monotonic()
    with ParseWorker(timeout_s=3600, memory_mb=2048) as worker:
        document = worker.parse(path)
        assert worker._process is not None
        worker_peak = _worker_peak_mb(worker._process.pid)
    chunks = chunk_document(document, embedder.token_offsets, CHUNK_TOKENS, OVERLAP)
    return {
        "file_mb": path.stat().st_size / 2**20,
        "chunks": len(chunks),
        "seconds": time.monotonic() - started,
        "baseline_mb": baseline,
        "peak_above_baseline_mb": _peak_mb() - baseline,
        "worker_peak_mb": worker_peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(measure_one(args.one)))
        return
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            path = Path(folder) / f"news-{size}mb.txt"
            write_text_file(path, size)
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks.ingest_memory", "--one", str(path)],
                capture_output=True,
                text=True,
            )
            path.unlink()
            if child.returncode != 0:
                reason = (child.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"{size:>4} MB  failed: {reason}")
                continue
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
            row = rows[-1]
            print(
                f"{row['file_mb']:>6.1f} MB  {row['chunks']:>7} chunks  {row['seconds']:>6.1f} s  "
                f"main process +{row['peak_above_baseline_mb']:>7.0f} MB over "
                f"{row['baseline_mb']:.0f} MB ({row['peak_above_baseline_mb'] / row['file_mb']:.1f}"
                f" x file)  parse worker {row['worker_peak_mb']:>6.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
