"""Terms the judge requires besides names: a technical word the reports never use, a small
number with its unit; a reader's everyday word is not one (the same two real NTSB reports as
tests/rag/test_refusal.py)."""

from __future__ import annotations

from pathlib import Path

from rag.library import Library
from tests.rag.test_refusal import TALLAHASSEE, library, reports  # noqa: F401  (fixtures)


def test_a_rare_word_the_reports_never_use_is_refused_by_name(library: Library) -> None:  # noqa: F811
    """The embedder reads floatplane as two common pieces (float, plane); English hardly
    uses it."""
    question = "Was the Piper PA-22-150 that hit trees near Tallahassee a floatplane?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant
    assert judgement.missing == ("floatplane",)


def test_an_everyday_word_the_reports_do_not_use_is_still_answered(library: Library) -> None:  # noqa: F811
    """The report says the airplane hit trees; treetops is the reader's word for it."""
    question = "Why did the Piper PA-22-150 clip the treetops on final approach near Tallahassee?"
    hits = library.search(question)
    assert Path(hits[0].file).name == TALLAHASSEE
    assert library.judge(hits, question).relevant


def test_a_quantity_the_report_states_is_answered(library: Library) -> None:  # noqa: F811
    """The report: "17 hours (Last 90 days, all aircraft)"."""
    question = "How many hours had the Tallahassee Piper PA-22-150 pilot flown in the last 90 days?"
    assert library.judge(library.search(question), question).relevant


def test_a_quantity_the_report_does_not_state_is_refused_by_name(library: Library) -> None:  # noqa: F811
    question = "How many hours had the Tallahassee Piper PA-22-150 pilot flown in the last 60 days?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant
    assert judgement.missing == ("60 days",)


def test_a_name_after_an_abbreviation_is_still_a_name(library: Library) -> None:  # noqa: F811
    """"St." ends no sentence, so "Augustine" is a name the reports must hold."""
    question = "Had the Tallahassee Piper PA-22-150 flown in from St. Augustine that day?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant
    assert "Augustine" in judgement.missing
