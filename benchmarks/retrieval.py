"""Retrieval quality and latency of the document library.

Run: ``.venv/bin/python -m benchmarks.retrieval`` (about 6 minutes on 2 cores; ``--quality-only``
skips the latency part and takes about 1 minute).

Quality: questions whose answers sit on known pages of tracemonkey.pdf and freeculture.pdf (the
shared corpus) and of a Chinese PDF generated here from ``data/chinese_pages.txt`` (one topic per
page, real Chinese text written for this benchmark; the corpus's only Chinese PDF is a one-page
table of contents). Reports hit@5 and MRR@10 for dense only, keyword only and hybrid (and hybrid
plus a cross-encoder when ``--rerank MODEL`` names one available offline). Unanswerable questions
calibrate the relevance thresholds: cosine for English, lexical support for Chinese. Latency:
hybrid search p50/p95 over synthetic collections of 10k and 100k chunks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

from benchmarks.pdfgen import write_text_pdf
from rag.chunker import Chunk
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from rag.manifest import DocumentRow, chunk_id
from rag.retriever import Reranker, Retriever

CLEAN = Path(__file__).resolve().parent.parent.parent / "shared" / "pdf-corpus" / "clean"
CHINESE_TEXT = Path(__file__).resolve().parent / "data" / "chinese_pages.txt"

# (question, file, pages holding the answer); pages were found by grepping the extracted text.
QUESTIONS: list[tuple[str, str, set[int]]] = [
    (
        "What advisory data structure records variables seen holding non-integer values?",
        "tracemonkey.pdf",
        {5},
    ),
    ("How does TraceMonkey handle preemption of long-running scripts?", "tracemonkey.pdf", {9}),
    ("What kind of garbage collector does SpiderMonkey use?", "tracemonkey.pdf", {8}),
    ("How are nested loops compiled into nested trace trees?", "tracemonkey.pdf", {6, 7}),
    ("What is trace stitching and why does it avoid calling the monitor?", "tracemonkey.pdf", {9}),
    (
        "How does the VM call external C functions through the FFI from a trace?",
        "tracemonkey.pdf",
        {10},
    ),
    (
        "What speedup does TraceMonkey achieve on the SunSpider benchmarks?",
        "tracemonkey.pdf",
        {10, 11, 12},
    ),
    (
        "Which earlier systems like Dynamo used trace-based optimization?",
        "tracemonkey.pdf",
        {12, 13},
    ),
    ("What is blacklisting of traces that fail to record?", "tracemonkey.pdf", {6, 7, 9}),
    ("What did Walt Disney take from the Grimm fairy tales?", "freeculture.pdf", {37, 38}),
    (
        "Why did the Causby farmers complain about airplanes killing their chickens?",
        "freeculture.pdf",
        {18, 19},
    ),
    (
        "How did RCA and David Sarnoff treat Armstrong's FM radio invention?",
        "freeculture.pdf",
        {20, 21, 22},
    ),
    (
        "What are doujinshi comics and why are they tolerated in Japan?",
        "freeculture.pdf",
        {39, 40, 41, 42},
    ),
    (
        "What did Jesse Jordan at Rensselaer do that led to a lawsuit by the RIAA?",
        "freeculture.pdf",
        {62, 63, 64, 65},
    ),
    (
        "What did Eric Eldred publish on the internet from the public domain?",
        "freeculture.pdf",
        {221, 228, 229},
    ),
    ("How did Kodak cameras change photography for ordinary people?", "freeculture.pdf", {46, 47}),
    ("长城的总长度是多少公里？", "chinese.pdf", {1}),
    ("被尊称为茶圣的陆羽写了哪部著作？", "chinese.pdf", {2}),
    ("野生大熊猫现在有多少只？", "chinese.pdf", {3}),
    ("二十四节气是什么时候被列入非物质文化遗产的？", "chinese.pdf", {4}),
    ("活字印刷术是谁发明的？用什么材料做字印？", "chinese.pdf", {5}),
    ("京沪高铁全长多少公里？", "chinese.pdf", {6}),
    ("黄河为什么会形成地上河？", "chinese.pdf", {7}),
    ("现存最早的针灸专著是哪一本？", "chinese.pdf", {8}),
    ("都江堰由哪三部分组成？", "chinese.pdf", {9}),
    ("莫高窟的藏经洞是谁发现的？", "chinese.pdf", {10}),
    # paraphrases: the question's wording differs from the page's
    ("万里长城最早是哪个皇帝连接起来的？", "chinese.pdf", {1}),
    ("明长城的东西两端分别在哪里？", "chinese.pdf", {1}),
    ("六大茶类中哪一种是完全发酵的？", "chinese.pdf", {2}),
    ("成年熊猫一天吃掉多少竹子？", "chinese.pdf", {3}),
    ("一年当中白天最长的是哪个节气？", "chinese.pdf", {4}),
    ("毕昇的胶泥活字比古登堡早多少年？", "chinese.pdf", {5}),
    ("从北京坐高铁到上海要几个小时？", "chinese.pdf", {6}),
    ("黄河的泥沙主要来自哪个地区？", "chinese.pdf", {7}),
    ("古代用来教针灸的铜人是谁主持铸造的？", "chinese.pdf", {8}),
    ("都江堰的鱼嘴起什么作用？", "chinese.pdf", {9}),
    ("敦煌的洞窟里保存了多少平方米壁画？", "chinese.pdf", {10}),
]

UNANSWERABLE = [
    "What is a good recipe for chocolate banana bread?",
    "Who won the football world cup in 2014?",
    "How do I change a flat tire on a bicycle?",
    "What is the boiling point of ethanol at sea level?",
    "Which planets in the solar system have rings?",
    "How many calories does a marathon runner burn?",
    "怎样做红烧肉？",
    "明天北京的天气怎么样？",
    # plausible, and most share words with the Chinese document (中国, 第一条, 熊猫, 中医 ...)
    "中国第一条地铁是哪一年开通的？",
    "长江三峡大坝每年的发电量是多少？",
    "故宫一共有多少个房间？",
    "熊猫血型在人群中占多大比例？",
    "京剧有哪些主要的行当？",
    "丝绸之路的起点是哪座城市？",
    "秦始皇陵兵马俑是哪一年被发现的？",
    "中医如何治疗失眠？",
    "世界文化遗产名录一共收录了多少个中国项目？",
    "唐代诗人李白写过哪些关于月亮的诗？",
    "高铁票可以在网上退票吗？",
]


def _chinese_pdf(folder: Path) -> Path:
    pages = [textwrap.wrap(line.strip(), 38) for line in CHINESE_TEXT.read_text().splitlines()]
    path = folder / "chinese.pdf"
    write_text_pdf(path, [page for page in pages if page], chinese=True)
    return path


def _rank(hits: list, document: str, pages: set[int]) -> int | None:
    for rank, hit in enumerate(hits, start=1):
        spans = set(range(hit.page_start, hit.page_end + 1))
        if Path(hit.file).name == document and spans & pages:
            return rank
    return None


def quality(library: Library, reranker: Reranker | None) -> dict[str, dict[str, float]]:
    modes = ["dense", "keyword", "hybrid"] + (["hybrid+rerank"] if reranker else [])
    report: dict[str, dict[str, float]] = {}
    for mode in modes:
        retriever = Retriever(
            library.manifest,
            library.store,
            library.embedder,
            reranker if mode == "hybrid+rerank" else None,
        )
        for language, subset in (
            ("en", [q for q in QUESTIONS if q[1] != "chinese.pdf"]),
            ("zh", [q for q in QUESTIONS if q[1] == "chinese.pdf"]),
        ):
            ranks = []
            for question, document, pages in subset:
                hits = retriever.search(question, "default", 10, mode=mode.split("+")[0])
                ranks.append(_rank(hits, document, pages))
            report[f"{mode}/{language}"] = {
                "hit@5": sum(1 for r in ranks if r and r <= 5) / len(ranks),
                "mrr@10": sum(1 / r for r in ranks if r) / len(ranks),
                "questions": len(ranks),
            }
    return report


def calibration(library: Library) -> dict[str, object]:
    """Per language, answerable vs unanswerable: the top hit's cosine, the lexical support of
    Chinese questions, and the share that ``is_relevant`` (given the query) accepts."""
    groups = {
        "answerable_en": [q for q, doc, _ in QUESTIONS if doc != "chinese.pdf"],
        "answerable_zh": [q for q, doc, _ in QUESTIONS if doc == "chinese.pdf"],
        "unanswerable_en": [q for q in UNANSWERABLE if q.isascii()],
        "unanswerable_zh": [q for q in UNANSWERABLE if not q.isascii()],
    }
    report: dict[str, object] = {
        "cosine_threshold": library.config.relevance_threshold,
        "cjk_threshold": library.config.cjk_relevance_threshold,
    }
    for name, questions in groups.items():
        cosines, supports, accepted = [], [], 0
        for question in questions:
            hits = library.search(question, k=5)
            cosines.append(round(hits[0].score, 3))
            support = library.lexical_support(hits, question)
            if support is not None:
                supports.append(round(support, 3))
            accepted += library.is_relevant(hits, question)
        report[name] = {
            "top_cosines": sorted(cosines),
            "lexical_supports": sorted(supports),
            "share_relevant": round(accepted / len(questions), 3),
        }
    return report


def latency(embedder: Embedder, root: Path, sizes: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Hybrid search latency over synthetic chunks (random vectors, text from real words)."""
    words = (CLEAN.parent / "README.md").read_text().split() + [
        line for line in CHINESE_TEXT.read_text()[:400]
    ]
    rng = random.Random(3)
    results: dict[str, dict[str, float]] = {}
    for size in sizes:
        library = Library(root / f"latency-{size}", LibraryConfig())
        library.use_embedder(embedder)
        library.store.create("default", library.config.embedding_model)
        library.manifest.add_collection("default", library.config.embedding_model)
        per_content = 2000
        vector_rng = np.random.default_rng(size)
        for number in range(size // per_content):
            content = hashlib.sha256(f"synthetic {number}".encode()).hexdigest()
            chunks = [
                Chunk(i, " ".join(rng.choices(words, k=120)), 1, 1, None, None, 200)
                for i in range(per_content)
            ]
            vectors = vector_rng.standard_normal((per_content, 384)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            library.manifest.begin_content("default", content)
            library.store.upsert(
                "default", [chunk_id(content, c.index) for c in chunks], vectors, content
            )
            library.manifest.commit_content(
                "default",
                DocumentRow(f"/synthetic/{number}.pdf", 1, 1, content),
                chunks,
                [f"{content}{i}" for i in range(per_content)],
                1,
                None,
                None,
            )
        queries = [q for q, _, _ in QUESTIONS] * 2
        library.search(queries[0])  # warm caches
        timings = []
        for query in queries:
            started = time.perf_counter()
            library.search(query, k=5)
            timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        results[f"{size}_chunks"] = {
            "p50_ms": statistics.median(timings),
            "p95_ms": timings[int(0.95 * (len(timings) - 1))],
            "queries": len(timings),
        }
        library.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rerank", help="cross-encoder model available offline (dir or cached id)")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--latency-only", action="store_true")
    parser.add_argument("--quality-only", action="store_true", help="skip the latency runs")
    args = parser.parse_args()
    embedder = Embedder("all-MiniLM-L6-v2")
    output: dict[str, object] = {"machine": f"{os.cpu_count()} cores", "date": time.strftime("%F")}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        if not args.latency_only:
            _quality_and_calibration(embedder, root, args.rerank, output)
        if not args.quality_only:
            sizes = tuple(int(size) for size in args.sizes.split(","))
            output["latency"] = latency(embedder, root, sizes)
    print(json.dumps(output, indent=2, ensure_ascii=False))


def _quality_and_calibration(
    embedder: Embedder, root: Path, rerank: str | None, output: dict[str, object]
) -> None:
    library = Library(root / "index", LibraryConfig())
    library.use_embedder(embedder)
    library.ingest([CLEAN / "tracemonkey.pdf", CLEAN / "freeculture.pdf", _chinese_pdf(root)])
    reranker = Reranker(rerank) if rerank else None
    output["quality"] = quality(library, reranker)
    output["rerank"] = rerank or "no cross-encoder available offline: not measured"
    output["calibration"] = calibration(library)
    library.close()


if __name__ == "__main__":
    main()
