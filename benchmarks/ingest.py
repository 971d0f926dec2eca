"""Ingest benchmark of the document library, with ratios against a naive pipeline in the same run.

Run: ``.venv/bin/python -m benchmarks.ingest`` (about 8 minutes on 2 cores).
Naive pipeline: pypdf text -> fixed 1000-character chunks -> the same embedder -> Chroma ``add``.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.pdfgen import write_text_pdf
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library

ROUNDS = 2
CLEAN = Path(__file__).resolve().parent.parent.parent / "shared" / "pdf-corpus" / "clean"


def naive_ingest(pdfs: list[Path], embedder: Embedder, directory: Path) -> tuple[int, int, float]:
    import chromadb
    import pypdf
    from chromadb.config import Settings

    started = time.monotonic()
    client = chromadb.PersistentClient(str(directory), Settings(anonymized_telemetry=False))
    collection = client.create_collection("naive", embedding_function=None)
    pages = chunks = 0
    for pdf in pdfs:
        reader = pypdf.PdfReader(pdf)
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        pages += len(reader.pages)
        pieces = [
            text[i : i + 1000] for i in range(0, len(text), 1000) if text[i : i + 1000].strip()
        ]
        if not pieces:
            continue
        vectors = embedder.embed_passages(pieces)
        collection.add(
            ids=[f"{pdf.name}-{n}" for n in range(len(pieces))],
            embeddings=vectors,
            documents=pieces,
        )
        chunks += len(pieces)
    return pages, chunks, time.monotonic() - started


def extraction_speed(pdfs: list[Path]) -> dict[str, float]:
    import pypdf
    import pypdfium2

    speeds: dict[str, float] = {}
    started = time.monotonic()
    pages = 0
    for pdf in pdfs:
        for page in pypdf.PdfReader(pdf).pages:
            page.extract_text()
            pages += 1
    speeds["pypdf_pages_per_s"] = pages / (time.monotonic() - started)
    started = time.monotonic()
    for pdf in pdfs:
        document = pypdfium2.PdfDocument(str(pdf))
        for index in range(len(document)):
            document[index].get_textpage().get_text_bounded()
        document.close()
    speeds["pypdfium2_pages_per_s"] = pages / (time.monotonic() - started)
    return speeds


def generate_big_corpus(folder: Path, pages_total: int) -> None:
    """Distinct pages of real prose: sentences of freeculture.pdf reshuffled per page."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(CLEAN / "freeculture.pdf"))
    text = " ".join(document[i].get_textpage().get_text_bounded() for i in range(len(document)))
    sentences = [
        s.strip() for s in re.split(r"(?<=[.!?])\s+", text.replace("\r\n", " ")) if len(s) > 30
    ]
    rng = random.Random(7)
    per_file = 250
    for number in range(0, pages_total, per_file):
        pages = []
        for _ in range(min(per_file, pages_total - number)):
            lines: list[str] = []
            for sentence in rng.sample(sentences, 12):
                lines.extend(sentence[i : i + 95] for i in range(0, len(sentence), 95))
            pages.append(lines[:55])
        write_text_pdf(folder / f"generated-{number // per_file}.pdf", pages)


PEAK_CHILD = """
import sys
from pathlib import Path
from rag.config import LibraryConfig
from rag.library import Library
report = Library(Path(sys.argv[1]), LibraryConfig()).ingest([Path(sys.argv[2])])
print(sum(r.pages for r in report.results), sum(r.chunks for r in report.results), report.seconds)
"""


def _tree_rss_kb(pid: int) -> int:
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as handle:
                total += next(int(row.split()[1]) for row in handle if row.startswith("VmRSS"))
            with open(f"/proc/{current}/task/{current}/children") as handle:
                pids.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total


def peak_memory_ingest(folder: Path, index: Path) -> dict[str, float]:
    child = subprocess.Popen(
        [sys.executable, "-c", PEAK_CHILD, str(index), str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kb(child.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    pages, chunks, seconds = output.split()
    return {
        "pages": int(pages),
        "chunks": int(chunks),
        "seconds": float(seconds),
        "pages_per_s": int(pages) / float(seconds),
        "peak_rss_mb_incl_children": peak / 1024,
    }


def main() -> None:
    pdfs = sorted(CLEAN.glob("*.pdf"))
    embedder = Embedder("all-MiniLM-L6-v2")
    embedder.embed_passages(["warm up the model"])
    results: dict[str, object] = {"machine": f"{os.cpu_count()} cores", "date": time.strftime("%F")}
    results["extraction"] = extraction_speed(pdfs)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        rounds: list[dict[str, float]] = []
        for number in range(ROUNDS):  # interleaved, so load from elsewhere hits both alike
            naive_pages, naive_chunks, naive_s = naive_ingest(
                pdfs, embedder, root / f"naive{number}"
            )
            library = Library(root / f"ours{number}", LibraryConfig())
            library.use_embedder(embedder)
            first = library.ingest([CLEAN])
            again = library.ingest([CLEAN])
            library.close()
            pages = sum(result.pages for result in first.results)
            chunks = sum(result.chunks for result in first.results)
            rounds.append(
                {
                    "naive_pages": naive_pages,
                    "naive_chunks": naive_chunks,
                    "naive_seconds": naive_s,
                    "naive_pages_per_s": naive_pages / naive_s,
                    "naive_chunks_per_s": naive_chunks / naive_s,
                    "pages": pages,
                    "chunks": chunks,
                    "seconds": first.seconds,
                    "pages_per_s": pages / first.seconds,
                    "chunks_per_s": chunks / first.seconds,
                    "pages_per_s_vs_naive": (pages / first.seconds) / (naive_pages / naive_s),
                    "reingest_seconds": again.seconds,
                    "reingest_ratio": again.seconds / first.seconds,
                }
            )
        results["rounds"] = rounds
        big = root / "big"
        big.mkdir()
        generate_big_corpus(big, 1000)
        results["thousand_pages"] = peak_memory_ingest(big, root / "big-index")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
