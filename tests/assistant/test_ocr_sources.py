"""A passage recognised by OCR is marked wherever its source is shown or kept: `ask --json`,
`search`, the app's sources panel and the conversation store (real SQLite, an old database
migrated). The hits are built here: these tests are about the display, not about OCR."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from assistant.answer_json import source_json
from assistant.conversations import ConversationStore
from assistant.events import Source
from assistant.migrations import MIGRATIONS
from rag.types import Hit
from tui.widgets.sources_panel import source_label


def _hit(ocr: bool) -> Hit:
    return Hit("c1", "/docs/scan.pdf", 2, 2, 0.8, "forty two barges carried grain", ocr=ocr)


def test_the_ocr_flag_goes_from_the_hit_to_json_and_the_sources_panel() -> None:
    scanned, typed = Source.from_hit(1, _hit(True)), Source.from_hit(2, _hit(False))
    assert source_json(scanned, cited=True)["ocr"] is True
    assert source_json(typed, cited=True)["ocr"] is False
    assert "p.2 (OCR)" in source_label(scanned, cited=True).plain
    assert "(OCR)" not in source_label(typed, cited=True).plain


def test_the_conversation_store_keeps_the_flag(tmp_path: Path) -> None:
    db = tmp_path / "conversations.sqlite3"
    store = ConversationStore(db)
    conversation = store.create(model="m", collection=None, settings={})
    store.add_user_message(conversation, "How many barges?")
    answer = store.start_answer(conversation, model="m")
    evidence = [Source.from_hit(1, _hit(True)), Source.from_hit(2, _hit(False))]
    store.finish_answer(
        answer,
        text="Forty two [1].",
        incomplete=False,
        grounded=True,
        usage=None,
        timings=None,
        evidence=evidence,
        cited=[1],
    )
    store.close()
    reopened = ConversationStore(db)
    assert [s.ocr for s in reopened.get(conversation).messages[1].evidence] == [True, False]
    reopened.close()


def test_sources_stored_before_ocr_read_as_not_recognised(tmp_path: Path) -> None:
    db = tmp_path / "conversations.sqlite3"
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
    for name, migration in MIGRATIONS:
        if name == "004_source_ocr":
            break
        migration(connection)
        connection.execute("INSERT INTO migrations VALUES (?, 0)", (name,))
    connection.execute(
        "INSERT INTO conversations(id, title, created_at, updated_at) VALUES ('old', 't', 0, 0)"
    )
    connection.execute(
        "INSERT INTO messages(conversation_id, role, text, created_at) "
        "VALUES ('old', 'assistant', 'an old answer [1]', 0)"
    )
    connection.execute(
        "INSERT INTO sources(message_id, number, file, page, score, text, chunk_id, cited) "
        "VALUES (1, 1, 'paper.pdf', '3', 0.5, 'a passage', 'c1', 1)"
    )
    connection.close()
    store = ConversationStore(db)
    (source,) = store.get("old").messages[0].evidence
    assert source.file == "paper.pdf" and source.ocr is False
    store.close()
