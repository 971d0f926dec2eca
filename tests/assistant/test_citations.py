"""Citation markers are parsed in both scripts and checked against the passages shown."""

from __future__ import annotations

from assistant.citations import cited_numbers, cited_sources
from assistant.events import Source


def _evidence(count: int) -> list[Source]:
    return [Source(n, f"f{n}.pdf", str(n), 0.5, "text", f"c{n}") for n in range(1, count + 1)]


def test_parses_single_grouped_and_ranged_markers_in_order() -> None:
    answer = "Traces are recorded [2]. Trees grow [1, 3] and [2][4]; see also [5-7]."
    assert cited_numbers(answer) == [2, 1, 3, 4, 5, 6, 7]


def test_parses_chinese_brackets_and_separators() -> None:
    assert cited_numbers("跟踪树会增长【1】，循环被记录［2，3］与【4、5】。") == [1, 2, 3, 4, 5]


def test_unknown_numbers_are_dropped_and_sources_mapped() -> None:
    sources = cited_sources("Yes [3] and no [9], maybe [1].", _evidence(3))
    assert [(s.number, s.file) for s in sources] == [(3, "f3.pdf"), (1, "f1.pdf")]


def test_text_without_markers_cites_nothing() -> None:
    assert cited_numbers("In 2009 [citation needed] the array a[i] grew.") == []
    assert cited_sources("No citations here.", _evidence(2)) == []


def test_huge_ranges_are_not_expanded() -> None:
    assert cited_numbers("[1-100000]") == []


def test_order_within_one_marker_is_kept() -> None:
    assert cited_numbers("Both [3, 1-2] and [5–4].") == [3, 1, 2]
