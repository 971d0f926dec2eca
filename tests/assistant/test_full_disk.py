"""A full disk during an ingest or an answer: one clear line, and nothing corrupted.

The data directory is a small tmpfs mounted by the test (the suite runs as root in CI); where
mounting is not permitted the tests skip. The disk is filled with a ballast file at the moment
that matters, and emptied again to check that everything carries on where it stopped.
"""

from __future__ import annotations

import errno
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.conversations import ConversationStore
from assistant.errors import StorageError
from assistant.events import AnswerFailed, AnswerFinished, TokenReceived
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from models.config import EngineConfig
from models.runtime import LlamaEngine
from models.store import ModelStore
from rag.config import LibraryConfig
from rag.library import Library
from tests.mounts import tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    with tmpfs(mount_point, "16m"):
        yield mount_point


def fill(disk: Path) -> Path:
    """Write a ballast file until the disk has no block left; returns it (delete to free)."""
    ballast = disk / "ballast"
    with ballast.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return ballast


def integrity(database: Path) -> str:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def _notes(folder: Path, numbers: range) -> Path:
    folder.mkdir()
    for number in numbers:
        (folder / f"note-{number}.md").write_text(
            f"# Note {number}\n\nThe lighthouse keeper logged storm number {number} in the "
            f"harbour book, with the wind at {10 + number} knots and the tide turning.\n"
        )
    return folder


def test_a_full_disk_during_ingest_is_one_line_and_the_index_survives(
    small_disk: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MINICPM_ASSISTANT_HOME", str(small_disk / "home"))
    first, more = _notes(tmp_path / "first", range(2)), _notes(tmp_path / "more", range(2, 6))
    assert main(["ingest", str(first), "--json"]) == 0
    capsys.readouterr()

    ballast = fill(small_disk)
    assert main(["ingest", str(more)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1, error
    assert "disk is full" in error[0] and "free some space" in error[0]
    index = Locations.default().index_dir
    assert str(index) in error[0]

    ballast.unlink()  # checked once there is room again (SQLite cannot even read a WAL database
    for database in (index / "manifest.sqlite3", index / "chroma" / "chroma.sqlite3"):  # without)
        assert integrity(database) == "ok"
    assert main(["ingest", str(first), str(more), "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts["indexed"] + counts["unchanged"] == 6 and counts["failed"] == 0, counts
    library = Library(index, LibraryConfig())
    try:
        records = library.documents()
        assert len(records) == 6
        chunks = sum(record.chunks for record in records)
        assert library.store.count("default") == chunks  # no orphan and no missing vector
        assert "storm number 3" in library.search("storm number 3 lighthouse")[0].text
    finally:
        library.close()


def test_a_full_disk_during_an_answer_keeps_the_conversation(
    small_disk: Path, tiny_models: dict[str, Path]
) -> None:
    locations = Locations.under(small_disk / "home").ensure()
    engine = LlamaEngine.load(
        ModelStore(tiny_models["q4_k_m"].parent).resolve(str(tiny_models["q4_k_m"])),
        EngineConfig(seed=3, max_context=1024),
    )
    settings = Settings()
    settings.chat.answer_tokens = 64
    service = AssistantService(settings, locations, engine=engine)
    try:
        finished = [
            event
            for event in service.ask("First question?", use_documents=False)
            if isinstance(event, AnswerFinished)
        ]
        conversation_id = finished[0].conversation_id
        ballast: Path | None = None
        failures: list[str] = []
        try:
            for event in service.ask(
                "Second question?", conversation_id=conversation_id, use_documents=False
            ):
                if isinstance(event, TokenReceived) and ballast is None:
                    ballast = fill(small_disk)
                elif isinstance(event, AnswerFailed):
                    failures.append(f"{event.title}: {event.message}")
        except StorageError as error:
            failures.append(f"{error.title}: {error.message}")
        assert ballast is not None, "the answer produced no token"
        assert len(failures) == 1, failures
        assert str(locations.database_file) in failures[0]
        assert "disk is full" in failures[0] and "free some space" in failures[0]
    finally:
        service.close()
        engine.close()

    ballast.unlink()
    assert integrity(locations.database_file) == "ok"
    store = ConversationStore(locations.database_file)
    try:
        messages = store.get(conversation_id).messages
        assert [message.role for message in messages][:3] == ["user", "assistant", "user"]
        assert messages[0].text == "First question?"
        assert messages[1].text == finished[0].answer
        assert messages[1].incomplete == finished[0].incomplete  # as it was saved, before
        assert messages[2].text == "Second question?"
        assert all(message.incomplete for message in messages[3:])
    finally:
        store.close()
