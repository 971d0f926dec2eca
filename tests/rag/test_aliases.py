"""Other forms of a question's names and periods that documents use, which the relevance judge
accepts where the literal search found nothing."""

from __future__ import annotations

import pytest

from rag.aliases import name_in, period_in, periods, quantity_in


@pytest.mark.parametrize(
    "text",
    [
        "Date & Time: 11/16/2007, 1730 EST",
        "on 16.11.2007 the aircraft",
        "Report date 2007-11-16.",
        "In November 2007 the pilot",
        "on Nov. 16, 2007, about",
        "on 16 November 2007",
        "2007年11月16日",
    ],
)
def test_a_month_is_found_however_the_date_is_written(text: str) -> None:
    assert period_in(11, 2007, text)


@pytest.mark.parametrize(
    "text",
    [
        "Date & Time: 12/16/2007",  # another month
        "on 11/16/2008",  # another year
        "In November the pilot, in 2007 the owner",  # month and year apart
        "serial 111/16/20071",  # digits of something else
    ],
)
def test_another_month_or_year_is_not_that_period(text: str) -> None:
    assert not period_in(11, 2007, text)


def test_periods_of_a_question_in_order_without_overlaps() -> None:
    assert periods("Between 3 March 2008 and July 2008, or on August 5, 2009?") == [
        ("3 March 2008", 3, 2008),
        ("July 2008", 7, 2008),
        ("August 5, 2009", 8, 2009),
    ]


@pytest.mark.parametrize(
    ("name", "run", "text"),
    [
        ("Alabama", "Alabama", "Location: Muscle Shoals, AL Accident Number"),
        ("Hampshire", "New Hampshire", "near Alton NH on a frozen lake"),
        ("Mexican", "Mexican", "near Arteaga, Mexico"),
        ("GVHD", "GVHD", "patients with oral cGVHD"),
        ("Guatemala", "Guatemala", "the Guatemalan authorities"),
        ("Canada", "Canada", "the Canadian investigators"),
        ("Pennsylvania", "Pennsylvania", "Location: Latrobe, PA Accident Number"),
    ],
)
def test_abbreviations_and_other_forms_of_a_name(name: str, run: str, text: str) -> None:
    assert name_in(name, run, text)


@pytest.mark.parametrize(
    ("name", "run", "text"),
    [
        ("Barbados", "Barbados", "the BD landing gear and the BGI tower"),  # letters, no comma
        ("Mooney", "Mooney", "a Piper PA-28 near Belen, NM"),
        ("Metallica", "Metallica", "a metal propeller"),  # endings too different
        ("carfilzomib", "carfilzomib", "complete response (CR), partial response, CR"),
        ("Alabama", "Alabama", "Alabama was not written this way"),  # the same spelling
        ("Cleveland", "Cleveland Clinic", "the mean and its 95% CI"),  # not the initials
        ("Zimmer", "Zimmer", "serious events (SAE, ZE) were rare"),  # a comma, but no place
        ("Cleveland", "Cleveland Clinic", "4510 Executive Dr, San Diego, CA 92121"),  # a state
        ("Quest", "Meta Quest", "copies are sent on written request"),  # ends in it, no acronym
        ("Meta", "Meta Quest", "patients with metastatic melanoma"),  # only its start
        ("Quest", "Meta Quest", "the quality of life questionnaire"),
    ],
)
def test_letters_and_look_alikes_that_are_not_the_name(name: str, run: str, text: str) -> None:
    """The same spelling is for the literal search to find; here only *other* forms count."""
    assert not name_in(name, run, text)


@pytest.mark.parametrize(
    ("number", "units", "text"),
    [
        ("48", ("cycles",), "maintenance continues for up to 48 treatment cycles."),
        ("50", ("次",), "欧佩克+第 50 次会议"),
        ("50", ("次",), "第五十次会议"),
        ("7", ("届",), "第七届进博会"),
        ("2", ("家",), "两家银行"),
        ("48", ("cycles",), "after forty-eight cycles of lenalidomide"),
        ("36", ("visit", "Month"), "At month 36 the assessments are repeated"),
        ("3", ("mg/kg",), "a loading dose of 3 mg/kg weekly"),
        ("60", ("°/s",), "at an angular velocity of 60°/s"),
        ("90", ("days",), "17 hours (Last 90 days, all aircraft)"),
    ],
)
def test_a_quantity_written_with_its_unit(number: str, units: tuple[str, ...], text: str) -> None:
    assert quantity_in(number, units, text)


@pytest.mark.parametrize(
    ("number", "units", "text"),
    [
        ("48", ("cycles",), "maintenance continues for up to 24 cycles; 48 patients enrol"),
        ("36", ("visit", "Month"), "visits at months 12 and 24; 36 subjects"),
        ("3", ("mg/kg",), "a loading dose of 1.5 mg/kg, 3 times a week"),
        ("3", ("mg/kg",), "doses of 13 mg/kg and 0.3 mg/kg"),
        ("5", ("次",), "第15次会议和第二十五次会议"),
        ("7", ("个",), "发现的第6个新物种，共7种"),
    ],
)
def test_the_number_and_the_unit_apart_are_not_the_quantity(
    number: str, units: tuple[str, ...], text: str
) -> None:
    assert not quantity_in(number, units, text)
