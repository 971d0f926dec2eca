"""Refusals on real reports: a question about something the documents do not mention is not
answered from look-alike passages, and the refusal names what is missing and what is there."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.embedder import Embedder
from rag.library import Library
from tests.conftest import PDF_CORPUS
from tests.rag.conftest import BACKENDS, open_library, store_of

REPORTS = PDF_CORPUS.parent / "eval" / "en-ntsb"
TALLAHASSEE = "20071229X02007.pdf"  # Piper PA-22-150, Tallahassee FL, 12/08/2007
DEATH_VALLEY = "20071231X02009.pdf"  # Beech A23, Death Valley CA, 11/29/2007
NEVIS = "20080117X00064.pdf"  # Bombardier Global 5000, Charlestown, Nevis, 01/06/2008


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("reports")
    for name in (TALLAHASSEE, DEATH_VALLEY):
        shutil.copyfile(REPORTS / name, folder / name)
    return folder


@pytest.fixture(scope="module", params=BACKENDS)
def library(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    embedder: Embedder,
    reports: Path,
) -> Iterator[Library]:
    """The two reports ingested once per backend (the tests only search and judge)."""
    store = store_of(request.param, request)
    library = open_library(tmp_path_factory.mktemp("index"), embedder, store)
    library.ingest([reports])
    yield library
    library.close()


def test_a_question_about_the_right_report_is_answered_from_it(library: Library) -> None:
    question = "Why did the Piper PA-22-150 hit trees on final approach near Tallahassee?"
    hits = library.search(question)
    assert Path(hits[0].file).name == TALLAHASSEE
    assert library.judge(hits, question).relevant


def test_the_report_a_question_names_leads_though_the_other_says_more_of_its_words(
    library: Library,
) -> None:
    """Only the Tallahassee report speaks of the weather in its first passage; only the Death
    Valley report is the Beech A23's. In a folder of two, its names are in half the passages,
    so the keyword leg ranks the weather passage first."""
    question = "What was the weather like at Death Valley for the Beech A23?"
    hits = library.search(question)
    assert {Path(hit.file).name for hit in hits} == {DEATH_VALLEY}
    assert library.judge(hits, question).relevant


def test_an_aircraft_the_reports_never_mention_is_refused_by_name(library: Library) -> None:
    question = "What was the probable cause of the Cessna 182 accident near Tallahassee?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant
    assert judgement.missing == ("Cessna 182",) and judgement.mentioned_nowhere
    assert judgement.covers == (("National Transportation Safety Board", 2),)
    assert judgement.documents == 2


def test_identifiers_of_two_different_reports_are_not_answered_as_one(library: Library) -> None:
    """PA-22-150 is the Tallahassee aircraft, A23 the Death Valley one: no report holds both."""
    question = "How many hours had the Piper PA-22-150 pilot flown before the A23 landing?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant and not judgement.mentioned_nowhere


def test_a_company_absent_from_the_collection_is_refused(library: Library) -> None:
    question = "How did Tesla's inventory change in 2007?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant and "Tesla" in judgement.missing


def test_a_state_the_report_abbreviates_is_not_missing(library: Library) -> None:
    """The report says "Tallahassee, FL", never "Florida"."""
    question = "Why did the Piper PA-22-150 hit trees near Tallahassee, Florida?"
    assert library.judge(library.search(question), question).relevant


def test_a_month_is_matched_against_the_report_date_in_numbers(library: Library) -> None:
    """The Tallahassee report is dated 12/08/2007: December 2007 is it, July 2008 is not."""
    asked = "What did the Piper PA-22-150 hit near Tallahassee in December 2007?"
    assert library.judge(library.search(asked), asked).relevant
    other = "What did the Piper PA-22-150 hit near Tallahassee in July 2008?"
    judgement = library.judge(library.search(other), other)
    assert not judgement.relevant and judgement.missing == ("July 2008",)


def test_an_aircraft_maker_the_reports_never_name_is_refused(library: Library) -> None:
    """A name the collection never uses, in no other form either, is not a spelling question:
    the Tallahassee report answers questions about its Piper, not about a Mooney."""
    question = "What did the Mooney hit on final approach near Tallahassee?"
    judgement = library.judge(library.search(question), question)
    assert not judgement.relevant and judgement.missing == ("Mooney",)
    assert judgement.mentioned_nowhere


def test_a_run_of_names_must_be_held_together_by_one_passage(library: Library) -> None:
    """The Tallahassee report names its investigator, Robert Gretz, and elsewhere a Willis; it
    says nothing of a Robert Willis. A place and an aircraft that the report's first page names
    together are one subject."""
    asked = "Who was Robert Gretz in the Piper PA-22-150 accident near Tallahassee?"
    assert library.judge(library.search(asked), asked).relevant
    apart = "Who was Robert Willis in the Piper PA-22-150 accident near Tallahassee?"
    judgement = library.judge(library.search(apart), apart)
    assert not judgement.relevant and judgement.missing == ("Robert Willis",)
    assert not judgement.mentioned_nowhere
    joined = "What did the Tallahassee Piper hit on final approach?"
    assert library.judge(library.search(joined), joined).relevant


def test_a_question_off_the_reports_subject_is_refused_though_it_names_their_place(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    """Nevis and Florida are in the reports, restaurants and oranges are not: the names pass,
    and it is the score that keeps the model from answering from its memory with a citation."""
    folder = tmp_path / "reports"
    folder.mkdir()
    for name in (TALLAHASSEE, NEVIS):
        shutil.copyfile(REPORTS / name, folder / name)
    library = make_library()
    library.ingest([folder])
    for question in (
        "What are the best restaurants in Charlestown, Nevis?",
        "How do you grow oranges in Florida?",
    ):
        judgement = library.judge(library.search(question), question)
        assert not judgement.relevant and judgement.missing == (), question
