"""Retrieval quality on real collections, against the naive pipeline, with each method switched off.

Run: ``.venv/bin/python -m benchmarks.retrieval [--collections en-ntsb,en-nih,zh-news,pdf-clean]
[--work DIR] [--latency 10000]``. The gold sets in ``benchmarks/gold/`` were written from the
documents before any retrieval change was measured, and are kept fixed: questions phrased the
way a reader asks (naming the document's subject, never quoting the passage), each with its file
and the exact answering sentence, plus near-miss unanswerable questions (an entity, period or
product the collection does not contain). ``benchmarks/gold/heldout/`` holds sets of the same
form written later, by writers who had not seen the methods, so that what was tuned on the first
sets shows: ``--collections heldout/en-ntsb,heldout/en-nih,heldout/zh-news``.

Per collection, in one run and on one machine:

- **naive**: pypdf text, fixed 1,000-character chunks, all-MiniLM-L6-v2, exact cosine search (what
  a Chroma collection returns), no keyword search; "not in your documents" below cosine 0.35;
- **project**: ``rag.Library`` as the app uses it, and the same index searched with each method
  of ``rag.retriever.Methods`` switched off in turn (plus each leg alone).

Metrics: passage-hit@5 (the answer sentence inside one of the top 5 passages: at least half of
its word trigrams, so a sentence cut by a passage boundary still counts when mostly inside),
document-hit@5, MRR@10 of the first answering passage, answerable questions refused, near-miss
unanswerable questions answered, evidence tokens per answer (embedding-model tokens of the top 5
passages, what the prompt would carry) and search latency p50/p95 (search plus the relevance
judgement). ``--work DIR`` keeps the indexes between runs (the library's own incremental ingest
then skips every unchanged file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rag import keyword
from rag.chunker import Chunk
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from rag.manifest import DocumentRow, chunk_id
from rag.retriever import Methods

ROOT = Path(__file__).resolve().parent
GOLD = ROOT / "gold"
NAIVE_CHUNK_CHARS = 1000
NAIVE_THRESHOLD = 0.35
K = 5
VARIANTS: dict[str, Methods] = {
    "project": Methods(),
    "equal-weight fusion": Methods(fusion="score"),
    "rrf fusion": Methods(fusion="rrf"),
    "no leg signal": Methods(leg_signal=False),
    "no document stage": Methods(document_stage=False),
    "no names first": Methods(names_lead=False),
    "no focus within the document": Methods(focus=False),
    "no identity in keyword": Methods(keyword_context=False),
    "collapse across documents": Methods(collapse="collection"),
    "dense only": Methods(legs="dense"),
    "keyword only": Methods(legs="keyword"),
}


class Passage(Protocol):
    """What the metrics read of a search result (a library ``Hit`` or a naive chunk)."""

    @property
    def file(self) -> str: ...

    @property
    def text(self) -> str: ...


@dataclass(frozen=True)
class NaiveChunk:
    file: str
    text: str


@dataclass
class Outcome:
    passage_ranks: list[int | None]
    document_hits: list[bool]
    refused_answerable: int
    evidence_tokens: list[int]
    latencies_ms: list[float]
    window_hits: list[bool]
    window_tokens: list[int]
    answered_kinds: dict[str, int]
    """Near-misses answered, by the kind of what is missing (entity, period, ..., detail)."""

    def summary(self) -> dict[str, float | dict[str, int]]:
        answerable = len(self.passage_ranks)
        ordered = sorted(self.latencies_ms)
        widened: dict[str, float | dict[str, int]] = {
            "window_passage_hit@5": round(sum(self.window_hits) / answerable, 3),
            "window_evidence_tokens": round(statistics.mean(self.window_tokens)),
        }
        summary: dict[str, float | dict[str, int]] = {
            "passage_hit@5": round(
                sum(1 for r in self.passage_ranks if r and r <= K) / answerable, 3
            ),
            "document_hit@5": round(sum(self.document_hits) / answerable, 3),
            "mrr@10": round(sum(1 / r for r in self.passage_ranks if r) / answerable, 3),
            "answerable_refused": round(self.refused_answerable / answerable, 3),
            "unanswerable_answered": sum(self.answered_kinds.values()),
            "unanswerable_answered_by_kind": dict(sorted(self.answered_kinds.items())),
            "evidence_tokens": round(statistics.mean(self.evidence_tokens)),
            "latency_p50_ms": round(statistics.median(ordered), 1),
            "latency_p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        }
        return summary | (widened if self.window_tokens != self.evidence_tokens else {})


def trigrams(text: str) -> list[tuple[str, ...]]:
    tokens = keyword.tokenize(text)
    if len(tokens) < 3:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]


def contains_answer(passage: str, answer: str) -> bool:
    """At least half of the answer's word trigrams occur in the passage."""
    wanted = trigrams(answer)
    have = set(trigrams(passage))
    return bool(wanted) and sum(1 for gram in wanted if gram in have) >= 0.5 * len(wanted)


def evaluate(
    gold: dict,
    search: Callable[[str], tuple[Sequence[Passage], bool]],
    count_tokens: Callable[[str], int],
) -> Outcome:
    outcome = Outcome([], [], 0, [], [], [], [], {})
    for item in gold["answerable"]:
        started = time.perf_counter()
        passages, relevant = search(item["question"])
        outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
        top = passages[:10]
        rank = next(
            (
                position
                for position, passage in enumerate(top, start=1)
                if Path(passage.file).name == item["file"]
                and contains_answer(passage.text, item["answer"])
            ),
            None,
        )
        outcome.passage_ranks.append(rank)
        outcome.document_hits.append(any(Path(p.file).name == item["file"] for p in top[:K]))
        outcome.refused_answerable += not relevant
        outcome.evidence_tokens.append(sum(count_tokens(p.text) for p in top[:K]))
        windows = [_window(p) for p in top[:K]]
        outcome.window_hits.append(
            any(
                Path(p.file).name == item["file"] and contains_answer(w, item["answer"])
                for w, p in zip(windows, top, strict=False)
            )
        )
        outcome.window_tokens.append(sum(count_tokens(w) for w in windows))
    for item in gold["unanswerable"]:
        started = time.perf_counter()
        _, relevant = search(item["question"])
        outcome.latencies_ms.append((time.perf_counter() - started) * 1000)
        kind = item.get("kind", "")
        outcome.answered_kinds[kind] = outcome.answered_kinds.get(kind, 0) + relevant
    return outcome


class QueryCache(Embedder):
    """Embeds each question once per run, so the variants compare rankings, not embedding time.

    :meth:`clear` before a timed pass: its latencies then include embedding the question.
    """

    def __init__(self, model_name: str) -> None:
        super().__init__(model_name)
        self._queries: dict[str, np.ndarray] = {}

    def embed_query(self, text: str) -> np.ndarray:
        if text not in self._queries:
            self._queries[text] = super().embed_query(text)
        return self._queries[text]

    def clear(self) -> None:
        self._queries.clear()


def _window(passage: Passage) -> str:
    """The passage with the neighbours a search returned with it (what a roomy prompt gets)."""
    before, after = getattr(passage, "before", ""), getattr(passage, "after", "")
    return " ".join(part for part in (before, passage.text, after) if part)


class NaivePipeline:
    """pypdf, 1,000-character chunks, MiniLM, cosine: the baseline every method must beat."""

    def __init__(self, embedder: Embedder, folder: Path, cache: Path) -> None:
        self.embedder = embedder
        self.passages = [NaiveChunk(str(path), text) for path, text in _naive_chunks(folder)]
        vectors_file = cache / "naive-vectors.npy"
        if vectors_file.exists():
            self.vectors = np.load(vectors_file)
        else:
            self.vectors = embedder.embed_passages([p.text for p in self.passages])
            cache.mkdir(parents=True, exist_ok=True)
            np.save(vectors_file, self.vectors)

    def search(self, question: str) -> tuple[list[NaiveChunk], bool]:
        scores = self.vectors @ self.embedder.embed_query(question)
        order = np.argsort(-scores)[:10]
        return [self.passages[i] for i in order], float(scores[order[0]]) >= NAIVE_THRESHOLD


def _naive_chunks(folder: Path) -> list[tuple[Path, str]]:
    import pypdf

    chunks: list[tuple[Path, str]] = []
    for path in sorted(folder.iterdir()):
        if path.suffix == ".pdf":
            try:
                text = "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)
            except Exception:  # the naive pipeline skips what pypdf cannot read
                continue
        elif path.suffix in {".txt", ".md"}:
            text = path.read_text(encoding="utf-8", errors="replace")
        else:
            continue
        chunks += [
            (path, text[start : start + NAIVE_CHUNK_CHARS])
            for start in range(0, len(text), NAIVE_CHUNK_CHARS)
            if text[start : start + NAIVE_CHUNK_CHARS].strip()
        ]
    return chunks


def project_search(library: Library) -> Callable[[str], tuple[Sequence[Passage], bool]]:
    def search(question: str) -> tuple[Sequence[Passage], bool]:
        hits = library.search(question, k=10)
        return hits, library.judge(hits[:K], question).relevant

    return search


def run_collection(name: str, embedder: QueryCache, work: Path) -> dict[str, object]:
    gold = json.loads((GOLD / f"{name}.json").read_text())
    cache = work / gold["collection"]  # a held-out set shares its collection's index
    folder = (ROOT.parent / gold["documents"]).resolve()
    count = lambda text: len(embedder.token_offsets([text])[0])  # noqa: E731
    library = Library(cache / "index", LibraryConfig())
    library.use_embedder(embedder)
    started = time.perf_counter()
    report = library.ingest([folder])
    ingest_s = time.perf_counter() - started
    results: dict[str, object] = {
        "documents": report.count("indexed") + report.count("unchanged") + report.count("updated"),
        "answerable": len(gold["answerable"]),
        "unanswerable": len(gold["unanswerable"]),
        "project_ingest_s": round(ingest_s, 1),
    }
    naive = NaivePipeline(embedder, folder, cache)
    embedder.clear()
    results["naive"] = evaluate(gold, naive.search, count).summary()
    for variant, methods in VARIANTS.items():
        library.methods = methods
        if variant == "project":
            embedder.clear()  # timed with the question's embedding, like the naive pass
        summary = evaluate(gold, project_search(library), count).summary()
        if variant != "project":  # later passes reuse the question vectors: not comparable
            summary = {key: value for key, value in summary.items() if "latency" not in key}
        results[variant] = summary
    library.methods = Methods()
    library.close()
    return results


def latency_at(size: int, embedder: QueryCache, work: Path) -> dict[str, float]:
    """Search plus judgement over ``size`` synthetic passages: random unit vectors, text drawn
    from the gold questions' words (so every query term matches many passages, the worst case
    for BM25), 2,000 passages per document; queried with every gold question."""
    questions = [
        item["question"]
        for path in sorted(GOLD.glob("*.json"))
        for kind in ("answerable", "unanswerable")
        for item in json.loads(path.read_text())[kind]
    ]
    words = " ".join(questions).split()
    rng = random.Random(size)
    vectors_rng = np.random.default_rng(size)
    library = Library(work / f"latency-{size}" / "index", LibraryConfig())
    library.use_embedder(embedder)
    library.ingest([])  # creates the collection
    per_document = 2000
    for number in range(size // per_document):
        content = hashlib.sha256(f"synthetic {number} of {size}".encode()).hexdigest()
        if library.manifest.has_content("default", content):
            continue
        chunks = [
            Chunk(i, " ".join(rng.choices(words, k=120)), 1, 1, None, None, 200)
            for i in range(per_document)
        ]
        vectors = vectors_rng.standard_normal((per_document, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        library.manifest.begin_content("default", content)
        ids = [chunk_id(content, chunk.index) for chunk in chunks]
        library.store.upsert("default", ids, vectors, content)
        library.manifest.commit_content(
            "default",
            DocumentRow(f"/synthetic/{number}.txt", 1, 1, content),
            chunks,
            [f"{content}{i}" for i in range(per_document)],
            1,
            None,
            None,
            f"Synthetic document {number}",
        )
    embedder.clear()
    search = project_search(library)
    search(questions[0])  # warm caches
    timings = []
    for question in questions:
        started = time.perf_counter()
        search(question)
        timings.append((time.perf_counter() - started) * 1000)
    library.close()
    timings.sort()
    return {
        "passages": size,
        "queries": len(timings),
        "p50_ms": round(statistics.median(timings), 1),
        "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--collections", default="en-ntsb,en-nih,zh-news,pdf-clean")
    parser.add_argument(
        "--latency", type=int, default=0, help="also time searches over this many passages"
    )
    parser.add_argument("--work", type=Path, help="keep indexes here between runs")
    parser.add_argument("--out", type=Path, help="also write the JSON report here")
    args = parser.parse_args()
    embedder = QueryCache("all-MiniLM-L6-v2")
    output: dict[str, object] = {
        "machine": f"{os.cpu_count()} cores",
        "date": time.strftime("%F %H:%M"),
    }
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        for name in filter(None, args.collections.split(",")):
            output[name] = run_collection(name, embedder, work)
            print(json.dumps({name: output[name]}, indent=2, ensure_ascii=False), flush=True)
        if args.latency:
            output["latency"] = latency_at(args.latency, embedder, work)
            print(json.dumps({"latency": output["latency"]}, indent=2), flush=True)
    if args.out:
        args.out.write_text(json.dumps(output, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
