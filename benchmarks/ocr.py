"""OCR benchmark: speed and character error rate on the generated scanned set (English and
Chinese), and ingest time with OCR on vs off for a folder of text and scanned PDFs, same run.

Run: ``.venv/bin/python -m benchmarks.ocr`` (about 5 minutes on 2 busy cores). The baseline of
the ingest ratio is measured in the same run: the same folder ingested with ``library.ocr =
"off"``.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.pdfgen import write_text_pdf
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from rag.ocr import recognise_image
from tests.rag import scans


def scanned_set() -> dict[str, list[scans.ScannedPage]]:
    """Four English pages (one in two columns) and three Chinese ones, scanned differently."""
    english = scans.english_font(34)
    chinese = scans.cjk_font(32)
    if chinese is None:
        raise SystemExit("the Chinese pages need the dev extra's font (noto-cjk-sans-otc)")
    return {
        "english": [
            scans.text_page(scans.ENGLISH, english, True, rotation=0.0, noise=20, seed=1),
            scans.text_page(scans.ENGLISH, english, True, rotation=2.5, noise=40, seed=2),
            scans.text_page(scans.ENGLISH, english, True, rotation=-3.0, noise=60, seed=3),
            scans.two_column_page(scans.ENGLISH_COLUMNS, english, rotation=-1.5),
        ],
        "chinese": [
            scans.text_page(scans.CHINESE, chinese, False, rotation=0.0, noise=20, seed=4),
            scans.text_page(scans.CHINESE, chinese, False, rotation=2.0, noise=40, seed=5),
            scans.text_page(scans.CHINESE, chinese, False, rotation=-3.0, noise=60, seed=6),
        ],
    }


def word_error_rate(expected: str, recognised: str) -> float:
    """Words not recognised as written (spaces matter here: "thebay" misses two words)."""
    want = expected.split()
    return scans.edit_distance(want, recognised.split()) / max(1, len(want))


def recognition(pages: list[scans.ScannedPage], words: bool) -> dict[str, float]:
    """Pages per second and error rates of :func:`rag.ocr.recognise_image` on ``pages``."""
    recognise_image(np.asarray(pages[0].image))  # loads the models: not part of the page time
    started = time.monotonic()
    texts = [recognise_image(np.asarray(page.image)) for page in pages]
    seconds = time.monotonic() - started
    rates = [scans.character_error_rate(p.text, t) for p, t in zip(pages, texts, strict=True)]
    result = {
        "pages": len(pages),
        "pages_per_s": round(len(pages) / seconds, 3),
        "cer_mean": round(statistics.mean(rates), 4),
        "cer_max": round(max(rates), 4),
    }
    if words:
        wer = [word_error_rate(p.text, t) for p, t in zip(pages, texts, strict=True)]
        result["wer_mean"] = round(statistics.mean(wer), 4)
    return result


def mixed_folder(folder: Path, pages: dict[str, list[scans.ScannedPage]]) -> None:
    """Ten text PDFs of ten pages each, one English scan of four pages, one Chinese of three."""
    lines = [f"{scans.ENGLISH[start : start + 90]}" for start in range(0, 720, 90)]
    for number in range(10):
        write_text_pdf(
            folder / f"text-{number}.pdf",
            [[f"Report {number}, page {page}."] + lines for page in range(10)],
        )
    scans.write_pdf(folder / "scan-english.pdf", pages["english"])
    scans.write_pdf(folder / "scan-chinese.pdf", pages["chinese"])


def ingest_seconds(folder: Path, ocr: str, embedder: Embedder) -> tuple[float, dict[str, str]]:
    with tempfile.TemporaryDirectory() as index:
        library = Library(Path(index), LibraryConfig(ocr=ocr))  # type: ignore[arg-type]
        library.use_embedder(embedder)
        started = time.monotonic()
        report = library.ingest([folder])
        seconds = time.monotonic() - started
        library.close()
    return seconds, {Path(r.path).name: r.status for r in report.results if "scan" in r.path}


def main() -> None:
    pages = scanned_set()
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    for language, group in pages.items():
        words = language == "english"
        results[language] = recognition(group, words)
    embedder = Embedder("all-MiniLM-L6-v2")
    with tempfile.TemporaryDirectory() as folder:
        mixed_folder(Path(folder), pages)
        off, off_status = ingest_seconds(Path(folder), "off", embedder)
        auto, auto_status = ingest_seconds(Path(folder), "auto", embedder)
    results["ingest_mixed_folder"] = {
        "files": "10 text PDFs x 10 pages + scans of 4 English and 3 Chinese pages",
        "ocr_off_s": round(off, 1),
        "ocr_auto_s": round(auto, 1),
        "auto_over_off": round(auto / off, 2),
        "scans_off": off_status,
        "scans_auto": auto_status,
    }
    results["load_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
