"""Other forms of a question's names and periods that documents use, which the relevance judge
accepts where the literal search found nothing."""

from __future__ import annotations

import pytest

from rag.aliases import name_in, period_in, periods, quantity_in, quarter_in, quarters


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
    ("question", "quarter"),
    [
        (
            "How did Apple's inventory in the Q3 2022 report reflect on its supply chain?",
            ("Q3 2022", 3, 2022),
        ),
        (
            "What was Amazon's revenue in the third quarter of 2022?",
            ("third quarter of 2022", 3, 2022),
        ),
        ("What did Apple report for fiscal 2022 Q3?", ("fiscal 2022 Q3", 3, 2022)),
        ("What was Tesla's inventory in Q3 FY22?", ("Q3 FY22", 3, 2022)),
        ("How did Microsoft do in 3Q22?", ("3Q22", 3, 2022)),
        ("What were sales in the fourth-quarter 1999?", ("fourth-quarter 1999", 4, 1999)),
        ("What were the Q2 revenues?", ("Q2", 2, 0)),
        ("搜狐2022年第四季度的营收是多少？", ("2022年第四季度", 4, 2022)),
        ("腾讯2023年二季度投入了多少研发费用？", ("2023年二季度", 2, 2023)),
        ("苹果2023财年第三财季卖了多少iPhone？", ("2023财年第三财季", 3, 2023)),
    ],
)
def test_the_quarter_a_question_names(question: str, quarter: tuple[str, int, int]) -> None:
    assert quarters(question) == [quarter]


@pytest.mark.parametrize("question", ["What was the IQ4 score?", "How many Q-tips?", "第四季"])
def test_no_quarter(question: str) -> None:
    assert quarters(question) == []


FILING = """FORM 10-Q. For the quarterly period ended June 25, 2022.
Third Quarter Fiscal 2022 Highlights: net sales rose."""


@pytest.mark.parametrize(
    ("quarter", "year", "text", "found"),
    [
        (3, 2022, FILING, True),  # the quarter in words, the year where the filing dates itself
        (4, 2022, FILING, True),  # dated by its end: any quarter of 2022 (fiscal years differ)
        (4, 2022, "Third Quarter Fiscal 2022 Highlights: net sales rose.", False),
        (3, 2021, FILING, False),  # another year
        (3, 0, "Q3 sales were flat", True),
        (4, 2022, "Net sales for the three months ended September 24, 2022 rose", True),
        (4, 2022, "Net sales for the three months ended September 25, 2021 rose. 2022", False),
        (2, 2023, "截至2023年6月30日的财务报告。第二季度，搜狐收入为1.52亿美元", True),
        (4, 2022, "第二季度，搜狐收入较2022年同期下降22%", False),
        (4, 0, "需求端采购启动，四季度迎销售旺季", True),
    ],
)
def test_a_quarter_is_found_however_it_is_written(
    quarter: int, year: int, text: str, found: bool
) -> None:
    assert quarter_in(quarter, year, text) is found


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
