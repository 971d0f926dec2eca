"""Word rarity read straight from wordfreq's lists agrees with wordfreq's own answer."""

from __future__ import annotations

import pytest
from wordfreq import zipf_frequency

from rag import word_rarity


@pytest.mark.parametrize(
    ("word", "language"),
    [
        ("the", "en"),
        ("overhaul", "en"),  # in the small list
        ("uveal", "en"),  # only in the large one
        ("Metformin", "en"),
        ("qzxvwk", "en"),  # in neither
        ("研发", "zh"),
        ("土星", "zh"),
    ],
)
def test_zipf_frequency_is_wordfreqs(word: str, language: str) -> None:
    assert word_rarity.zipf(word, language) == pytest.approx(
        zipf_frequency(word, language), abs=0.011
    )


def test_a_language_without_lists_knows_no_word() -> None:
    assert word_rarity.zipf("word", "xx") == 0.0


def test_a_floor_reads_no_rarer_word() -> None:
    assert word_rarity.zipf("overhaul", "en", floor=2.0) == word_rarity.zipf("overhaul", "en")
    assert word_rarity.zipf("uveal", "en", floor=2.0) == 0.0  # 1.68, below the floor
