"""Passages of a long document ranked by what the question asks of it, not by the words that
name the document (which every one of its sections repeats)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.library import Library
from rag.retriever import Methods
from tests.rag.conftest import both_backends

pytestmark = both_backends

SECTIONS = [
    "Background. The ovarian cancer online support group study compares an online support group "
    "with an offline support group for ovarian cancer patients after surgery.",
    "Objectives. The ovarian cancer support group study tests whether an online support group "
    "improves the quality of life of ovarian cancer patients as an offline support group does.",
    "Design. Ovarian cancer patients are randomised to the online support group or to the "
    "offline support group of the ovarian cancer study.",
    "Eligibility. Women with ovarian cancer aged 45 or older may join either support group of the "
    "study; the online support group needs a smartphone.",
    "Sessions. The offline support group for ovarian cancer meets weekly for 90 minutes; the "
    "online support group for ovarian cancer chats daily about quality of life.",
    "Outcomes. Each participant answers the SF-12 instrument, twelve questions about her "
    "quality of life, at baseline and after three months.",
    "Safety. Any distress an ovarian cancer patient reports in the online or offline support "
    "group is passed to the study nurse of the ovarian cancer clinic.",
    "Data. Records of the ovarian cancer support group study are kept for five years, online "
    "support group transcripts encrypted.",
    "Ethics. The ovarian cancer support group study was approved by the ethics board; each "
    "ovarian cancer patient signs consent for the online or offline support group.",
    "Funding. The ovarian cancer online support group study is funded by the cancer society; "
    "the offline support group rooms are lent by the hospital.",
    "Hypothesis. Ovarian cancer patients in the online support group keep a quality of life no "
    "worse than those in the offline support group of the study.",
    *(
        f"{topic}. The ovarian cancer online support group study {detail} for every ovarian "
        "cancer patient of the online and the offline support group."
        for topic, detail in [
            ("Recruitment", "recruits in the gynaecology ward"),
            ("Training", "trains moderators"),
            ("Moderation", "has a nurse moderate each session"),
            ("Withdrawal", "lets a patient leave at any time"),
            ("Privacy", "keeps names out of the chat"),
            ("Reminders", "sends a weekly reminder"),
            ("Devices", "lends tablets"),
            ("Language", "runs in Chinese"),
            ("Follow-up", "calls after six months"),
        ]
    ),
]
QUESTION = (
    "Which instrument measures quality of life in the ovarian cancer online support group study?"
)


def _rank_of_answer(library: Library) -> int:
    hits = library.search(QUESTION, k=10)
    return next((n for n, hit in enumerate(hits, 1) if "SF-12" in hit.text), 99)


def test_the_answering_section_of_a_long_document_comes_first(
    make_library: Callable[..., Library], tmp_path: Path
) -> None:
    folder = tmp_path / "protocol"
    folder.mkdir()
    text = "# Ovarian cancer online support group study\n\n" + "\n\n".join(
        f"## {section.split('.')[0]}\n\n{section}" for section in SECTIONS
    )
    (folder / "protocol.md").write_text(text + "\n", encoding="utf-8")
    library = make_library(chunk_tokens=48, chunk_overlap=0)
    library.ingest([folder])
    assert library.manifest.chunk_count("default") >= 8, "too short a document to need focus"
    assert _rank_of_answer(library) <= 2
    library.methods = Methods(focus=False)
    assert _rank_of_answer(library) > 2, "the document's own words already pick the answer"
