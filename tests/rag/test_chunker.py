"""Chunking by model tokens: sentences, Chinese punctuation, overlap, pages, determinism."""

from __future__ import annotations

from rag.chunker import chunk_document, chunk_pages
from rag.embedder import Embedder
from rag.loaders import ExtractedDocument, ExtractedPage, OutlineEntry

ENGLISH = (
    "The library splits text into sentences. Each sentence is measured in tokens of the model. "
    "Chunks never exceed the budget! Do they overlap? They share whole sentences at the edges."
)
CHINESE = (
    "自由文化是一种重要的理念。知识应当被分享！版权法是否过于严格？我们需要平衡；创作者也需要回报。"
)


def _doc(*texts: str, outline: tuple[OutlineEntry, ...] = ()) -> ExtractedDocument:
    pages = tuple(ExtractedPage(number, text) for number, text in enumerate(texts, start=1))
    return ExtractedDocument(pages, outline=outline)


def _tokens(embedder: Embedder, text: str) -> int:
    return len(embedder.token_offsets([text])[0])


def test_english_chunks_respect_the_budget_and_sentence_ends(embedder: Embedder) -> None:
    document = _doc(" ".join([ENGLISH] * 30))
    chunks = chunk_document(document, embedder.token_offsets, max_tokens=64, overlap=16)
    assert len(chunks) > 5
    for chunk in chunks:
        assert _tokens(embedder, chunk.text) <= 64 + 4  # joining spaces may merge or split a token
        assert chunk.text.rstrip()[-1] in ".!?"
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))


def test_consecutive_chunks_share_a_sentence(embedder: Embedder) -> None:
    chunks = chunk_document(_doc(" ".join([ENGLISH] * 10)), embedder.token_offsets, 64, 20)
    for first, second in zip(chunks, chunks[1:], strict=False):
        tails = [first.text[i:] for i in range(len(first.text) - 10)]
        assert any(second.text.startswith(tail) for tail in tails if tail[0].isupper())


def test_chinese_is_cut_at_chinese_sentence_punctuation(embedder: Embedder) -> None:
    chunks = chunk_document(_doc(CHINESE * 20), embedder.token_offsets, 48, 0)
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text[-1] in "。！？；"
        assert _tokens(embedder, chunk.text) <= 48
    assert "".join(chunk.text for chunk in chunks) == CHINESE * 20


def test_small_pages_merge_and_carry_their_page_range(embedder: Embedder) -> None:
    pages = [f"Page {n} says one short thing about topic {n}." for n in range(1, 7)]
    chunks = chunk_document(_doc(*pages), embedder.token_offsets, 40, 0)
    assert len(chunks) < len(pages)
    assert chunks[0].page_start == 1 and chunks[0].page_end > 1
    assert chunks[-1].page_end == 6
    covered = [page for chunk in chunks for page in range(chunk.page_start, chunk.page_end + 1)]
    assert sorted(set(covered)) == [1, 2, 3, 4, 5, 6]


def test_a_sentence_longer_than_the_budget_is_split(embedder: Embedder) -> None:
    run_on = " ".join(f"word{n}" for n in range(400))
    chunks = chunk_document(_doc(run_on), embedder.token_offsets, 50, 10)
    assert len(chunks) > 5
    assert all(_tokens(embedder, chunk.text) <= 50 for chunk in chunks)


def test_chunks_carry_the_nearest_heading(embedder: Embedder) -> None:
    text = "1 Introduction\nWe study tracing.\n\n2 Design\nThe recorder writes traces."
    chunks = chunk_document(_doc(text), embedder.token_offsets, 8, 0)
    headings = {chunk.heading for chunk in chunks}
    assert {"1 Introduction", "2 Design"} <= headings
    outlined = _doc("Some text on a page.", outline=(OutlineEntry(1, "Preface"),))
    assert chunk_document(outlined, embedder.token_offsets, 64, 0)[0].heading == "Preface"


def test_chunking_is_deterministic(embedder: Embedder) -> None:
    document = _doc(ENGLISH * 5, CHINESE * 5, ENGLISH)
    first = chunk_document(document, embedder.token_offsets, 60, 15)
    second = chunk_document(document, embedder.token_offsets, 60, 15)
    assert first == second


def test_a_page_given_in_parts_chunks_as_the_whole_page(embedder: Embedder) -> None:
    """Streamed text comes as parts of one page cut at blank lines: the chunks are the same,
    labels and outline headings included, and they come one by one."""
    paragraphs = [f"{ENGLISH} Paragraph {n}." if n % 3 else CHINESE for n in range(24)]
    pages = (
        ExtractedPage(1, "\n\n".join(paragraphs[:12]), "i"),
        ExtractedPage(2, "\n\n".join(paragraphs[12:]), "ii"),
    )
    outline = (OutlineEntry(1, "Preface"), OutlineEntry(2, "Part two"))
    whole = chunk_document(
        ExtractedDocument(pages, outline=outline), embedder.token_offsets, 60, 15
    )
    parts = [
        ExtractedPage(page.number, "\n\n".join(paragraphs[start : start + 4]), page.label)
        for page, first in zip(pages, (0, 12), strict=True)
        for start in range(first, first + 12, 4)
    ]
    streamed = chunk_pages(iter(parts), outline, embedder.token_offsets, 60, 15)
    assert next(streamed) == whole[0]
    assert [whole[0], *streamed] == whole
    assert {chunk.heading for chunk in whole} == {"Preface", "Part two"}
    assert {chunk.page_label for chunk in whole} == {"i", "ii"}
