"""Salient terms: what a question cannot be answered without, in English and Chinese."""

from __future__ import annotations

import re

import pytest

from rag.salience import chinese_quantities, quantities, rare_words, salient_terms


@pytest.mark.parametrize(
    ("question", "terms"),
    [
        ("How did Tesla's inventory change in Q3 2022?", ["Q3 2022*", "Tesla"]),
        (
            "What did Amazon earn in the third quarter of fiscal 2022?",
            ["third quarter of fiscal 2022*", "Amazon"],
        ),
        (
            "What happened to the Piper PA-22-150 on approach to Tallahassee, Florida?",
            ["Piper", "PA-22-150*", "Tallahassee", "Florida"],
        ),
        ("Why did the Cessna 182 lose power in December 2007?", ["December 2007*", "Cessna 182*"]),
        (
            "According to Lessig, what was Buster Keaton's 1928 film?",
            ["Lessig", "Buster", "Keaton", "1928*"],
        ),
        (
            "Where did the RV-8 crash at Arnold Palmer Regional Airport land?",
            ["RV-8*", "Arnold", "Palmer", "Regional", "Airport"],
        ),
        ('What does the paper call "trace stitching"?', ["trace stitching*"]),
        ("How many hours had the 85-year-old pilot flown in the last 90 days?", ["90 days*"]),
        ("What is the sample size of the trial?", []),
        ("Which NCT number does the GVHD dressing study have?", ["NCT", "GVHD"]),
        (
            "What does the TraceMonkey paper say about JägerMonkey's method JIT?",
            ["TraceMonkey", "JägerMonkey", "JIT"],
        ),
        (
            "What dose is given for hemophilia B at King Chulalongkorn Hospital?",
            ["hemophilia B*", "King", "Chulalongkorn", "Hospital"],
        ),
        (
            "What did the recorder capture on the approach to Vance W. Amory Airport?",
            ["Vance", "Amory", "Airport"],
        ),
        (
            "Did the Learjet divert to St. Kitts or to Mt. Pleasant?",  # abbreviations end nothing
            ["Learjet", "St", "Kitts", "Mt", "Pleasant"],
        ),
        (
            "AMD Radeon PRO W7900和W7800专业显卡多少钱？",
            ["AMD", "Radeon", "PRO", "W7900*", "W7800*"],
        ),
    ],
)
def test_english_salient_terms(question: str, terms: list[str]) -> None:
    """``*`` marks an identifier (its absence is proof), the rest are names."""
    assert [t.text + ("*" if t.identifier else "") for t in salient_terms(question)] == terms


@pytest.mark.parametrize(
    ("question", "model"),
    [
        ("小米14手机什么时候能升级？", "小米14"),
        ("哪吒GT跑车什么时候上市？", "哪吒GT"),
        ("高合HiPhi Z的续航里程有多少公里？", "高合HiPhi Z"),
        ("奥迪A6 e-tron充电10分钟能跑多远？", None),  # A6 is an identifier by itself
        ("推特换成X品牌之后推文改叫什么？", None),  # "changed to X": no name
        ("腾讯2023年第二季度投入了多少研发费用？", None),  # a company and a year
        ("建设银行8月20日公布的存款利率是多少？", None),  # the bank and a date
        ("华为9月发布的手机叫什么？", None),
        ("比亚迪3家工厂的产能是多少？", None),  # a count of factories
    ],
)
def test_a_model_written_onto_a_chinese_name_is_one_identifier(
    question: str, model: str | None
) -> None:
    identifiers = [term.text for term in salient_terms(question) if term.identifier]
    joined = [text for text in identifiers if re.search(r"[\u4e00-\u9fff][A-Za-z0-9]", text)]
    assert joined == ([model] if model else [])


def test_chinese_names_and_quoted_titles_are_salient() -> None:
    terms = {term.text: term.identifier for term in salient_terms("特斯拉在上海工厂的产量是多少？")}
    assert terms.get("特斯拉") is False and terms.get("上海") is False
    quoted = salient_terms("《刺客信条：幻景》什么时候发售？")
    assert [(t.text, t.identifier) for t in quoted] == [("刺客信条：幻景", True)]
    assert salient_terms("这种疗法有什么副作用？") == []
    # jieba's dictionary tags 那阵子 ("that while") as a person's name
    assert "那阵子" not in [t.text for t in salient_terms("油价大涨那阵子，航空公司怎么应对？")]


def test_a_month_with_its_year_is_one_period() -> None:
    """Documents write dates many ways (12/08/2007), so the month and year are kept together
    for the judge to look for in any of them, not as the bare year."""
    periods = [
        t for t in salient_terms("What happened on 16 November 2007 and in Dec. 2008?") if t.month
    ]
    assert [(t.text, t.month, t.year, t.identifier) for t in periods] == [
        ("16 November 2007", 11, 2007, True),
        ("Dec. 2008", 12, 2008, True),
    ]


def test_names_know_the_names_written_next_to_them() -> None:
    """ "NH" abbreviates "New Hampshire", not "Hampshire"; a comma or a possessive ends a run."""
    runs = {
        t.text: t.run
        for t in salient_terms("Did the RIAA's Hilary Rosen fly to Alton, New Hampshire?")
    }
    assert runs == {
        "RIAA": "RIAA",
        "Hilary": "Hilary Rosen",
        "Rosen": "Hilary Rosen",
        "Alton": "Alton",
        "New": "New Hampshire",
        "Hampshire": "New Hampshire",
    }


def test_rare_words_are_the_technical_ones() -> None:
    """A word the embedder splits into three pieces, or one general English hardly uses, is
    technical; a reader's everyday word is not, however long."""
    pieces = {"uveal": 2, "melanoma": 2, "receive": 1, "metformin": 3, "counterfeiting": 2}
    question = "Do patients with uveal melanoma receive metformin, or is it counterfeiting?"
    words = [term.text for term in rare_words(question, lambda word: pieces.get(word, 1))]
    assert words == ["uveal", "metformin"]


def test_a_chinese_word_jieba_had_to_guess_and_rarely_seen_is_a_rare_word() -> None:
    """喜茶 (a tea shop chain) is in no dictionary and its tagger calls it a verb; the words
    jieba guesses by slip (人欠, taken out of 美国人欠的) or that point and count (那批) are not."""
    assert [t.text for t in rare_words("喜茶门店因为使用过期原料被罚了多少钱？", len)] == ["喜茶"]
    assert rare_words("纽约联储调查显示美国人欠的信用卡债总额涨到了多少？", len) == []
    assert rare_words("绍兴农贸市场那批生姜是哪项检测不达标？", len) == []
    assert rare_words("成年大熊猫每天吃多少竹子？", len) == []  # dictionary words only


@pytest.mark.parametrize(
    ("question", "quantity"),
    [
        ("What happens once they have completed 48 cycles?", ("48 cycles", "48", ("cycles",))),
        (
            "Which assessments are done at the Month 36 visit?",
            ("Month 36 visit", "36", ("visit", "Month")),
        ),
        ("How is the 3 mg/kg loading dose scheduled?", ("3 mg/kg", "3", ("mg/kg",))),
    ],
)
def test_a_small_number_with_its_unit_is_a_quantity(
    question: str, quantity: tuple[str, str, tuple[str, ...]]
) -> None:
    [term] = quantities(question)
    assert (term.text, term.number, term.units) == quantity


@pytest.mark.parametrize(
    "question",
    [
        "What class of medical certificate did the 17-year-old student hold?",  # onto a word
        "What gene underlies Charcot-Marie-Tooth disease type 4J?",
        "How did the pilot of the RV-8 react?",
        "Which arm had fewer dropouts by 12?",  # the number counts nothing named
    ],
)
def test_numbers_written_onto_words_or_alone_are_no_quantity(question: str) -> None:
    assert quantities(question) == []


@pytest.mark.parametrize(
    ("question", "counts"),
    [
        ("欧佩克+第50次部长级会议做了什么决定？", [("第50次", "50", "次")]),
        ("第七届进博会有多少家企业参展？", [("第七届", "7", "届")]),
        ("这3家银行下调了哪些利率？", [("3家", "3", "家")]),
        ("一个月能省多少电费？", []),  # 一个 is "a", not a count
        ("两家公司合并后叫什么？", []),
        ("8月的销量是多少？", []),  # a month, not a count
        ("超过100人参加了吗？", []),  # three digits: an identifier already
    ],
)
def test_a_small_chinese_count_with_its_measure_word_is_a_quantity(
    question: str, counts: list[tuple[str, str, str]]
) -> None:
    found = [(t.text, t.number, t.units[0]) for t in chinese_quantities(question)]
    assert found == counts
