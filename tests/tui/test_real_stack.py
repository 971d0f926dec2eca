"""The main flows on the real stack: AssistantService with the offline demo model (llama.cpp),
MiniLM embeddings and Chroma on disk, driven through the app with Pilot.

The index of tracemonkey.pdf is built once for the module (about 20 s on 2 cores); each test
gets its own app on that home.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.notifications import Notification
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Label, OptionList

from assistant.events import AnswerFinished, ChatEvent, TokenReceived
from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from tests.tui.test_chat_ui import turn_events
from tests.tui.waiting import wait_until
from tui.app import FIRST_RUN_MARKER, MiniCPMApp, make_app
from tui.screens.chat import ChatScreen
from tui.screens.first_run import FirstRunScreen
from tui.screens.library import LibraryScreen
from tui.widgets.chat_log import AnswerView, UserMessage
from tui.widgets.path_input import PathInput
from tui.widgets.prompt import PromptInput
from tui.widgets.sources_panel import SourcesPanel
from tui.widgets.status_bar import StatusBar

pytestmark = pytest.mark.slow

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"}


def small_settings() -> Settings:
    """Short answers keep each turn to seconds with the demo model on a laptop CPU."""
    settings = Settings()
    settings.chat.answer_tokens = 48
    return settings


@pytest.fixture(scope="module")
def indexed_home(tmp_path_factory: pytest.TempPathFactory, pdf_corpus_path: Path) -> Locations:
    locations = Locations.under(tmp_path_factory.mktemp("real-home")).ensure()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in OFFLINE.items():
            patch.setenv(name, value)
        service = AssistantService(small_settings(), locations)
        try:
            report = service.ingest([pdf_corpus_path / "clean" / "tracemonkey.pdf"])
        finally:
            service.close()
    assert report.count("indexed") == 1
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    return locations


@pytest.fixture(scope="module")
def pdf_corpus_path() -> Path:
    from tests.conftest import PDF_CORPUS

    return PDF_CORPUS


@pytest.fixture
def real_service(indexed_home: Locations) -> Iterator[AssistantService]:
    service = AssistantService(small_settings(), indexed_home)
    yield service
    service.close()


@pytest.fixture
def real_app(indexed_home: Locations, real_service: AssistantService) -> MiniCPMApp:
    return make_app(real_service.settings, indexed_home, service=real_service)


async def ask(pilot: Pilot[None], app: MiniCPMApp, question: str) -> None:
    await wait_until(pilot, lambda: app.model_status is not None, what="the model", timeout=60)
    prompt = app.screen.query_one(PromptInput)
    prompt.text = question
    prompt.focus()
    await pilot.press("enter")


def rows_by_name(table: DataTable[object]) -> dict[str, list[str]]:
    """The table's rows as plain text, by their first cell."""
    rows = ([str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count))
    return {row[0]: row for row in rows}


def chat(app: MiniCPMApp) -> ChatScreen:
    assert isinstance(app.screen, ChatScreen)
    return app.screen


async def test_ask_streams_an_answer_with_its_sources(real_app: MiniCPMApp) -> None:
    seen: list[Message] = []
    async with real_app.run_test(size=(120, 36), message_hook=seen.append) as pilot:
        await ask(pilot, real_app, "What is TraceMonkey?")
        await wait_until(pilot, lambda: not chat(real_app).generating, timeout=120)

        finished = turn_events(seen, AnswerFinished)[0]
        tokens = turn_events(seen, TokenReceived)
        assert len(tokens) > 3, "the answer arrived token by token"
        answer = real_app.screen.query_one(AnswerView)
        assert answer.text.strip() == finished.answer.strip() != ""
        files = {Path(s.file).name for s in real_app.screen.query_one(SourcesPanel).sources}
        assert files == {"tracemonkey.pdf"}
        status = str(real_app.screen.query_one(StatusBar).render())
        assert "gemma3-270m-demo (offline demo model)" in status and "CPU" in status
        assert real_app.screen.query_one(StatusBar).tokens_per_s


def held_once_written(service: AssistantService, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Once the real answer has some text, each further token waits until the user stops it,
    so Esc lands mid-answer however short the demo model's answer is (it can end after a few
    tokens). Returns the text each turn has written so far."""
    answer = service.ask
    written: list[str] = []

    def held(question: str, **options: Any) -> Iterator[ChatEvent]:
        written.append("")
        for event in answer(question, **options):
            yield event
            if isinstance(event, TokenReceived):
                written[-1] += event.text
                if written[-1].strip():
                    options["cancel"].wait(timeout=60)

    monkeypatch.setattr(service, "ask", held)
    return written


async def test_escape_stops_generation_and_keeps_the_partial_answer(
    real_app: MiniCPMApp, real_service: AssistantService, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = held_once_written(real_service, monkeypatch)
    async with real_app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, real_app, "Describe trace trees in TraceMonkey in detail.")
        await wait_until(pilot, lambda: bool(written and written[-1].strip()), timeout=120)
        await wait_until(
            pilot,
            lambda: bool(real_app.screen.query(AnswerView).last().text.strip()),
            what="the first words on screen",
        )
        await pilot.press("escape")
        await wait_until(pilot, lambda: not chat(real_app).generating, timeout=60)

        answer = real_app.screen.query(AnswerView).last()
        stored = real_app.service.get_conversation(chat(real_app).conversation_id or "")
        assert stored.messages[-1].incomplete
        assert stored.messages[-1].text.strip() == answer.text.strip() != ""
        assert "stopped" in str(answer.query_one(".answer-note").render())


async def test_switch_conversation(real_app: MiniCPMApp, real_service: AssistantService) -> None:
    other = real_service.conversation_from([])
    real_service.rename_conversation(other, "Empty notes")
    async with real_app.run_test(size=(120, 36)) as pilot:
        await ask(pilot, real_app, "Who wrote the TraceMonkey paper?")
        await wait_until(pilot, lambda: not chat(real_app).generating, timeout=120)
        asked = chat(real_app).conversation_id

        options = real_app.screen.query_one("#conversation-options", OptionList)
        options.focus()
        options.highlighted = options.get_option_index(other)
        await pilot.press("enter")
        await wait_until(pilot, lambda: chat(real_app).conversation_id == other)
        assert not real_app.screen.query(UserMessage)

        options.highlighted = options.get_option_index(asked or "")
        await pilot.press("enter")
        await wait_until(pilot, lambda: chat(real_app).conversation_id == asked)
        questions = [str(m.render()) for m in real_app.screen.query(UserMessage)]
        assert questions[-1] == "Who wrote the TraceMonkey paper?"
        assert real_app.screen.query(AnswerView).last().text.strip()


async def test_ingest_a_folder_from_the_library_screen(
    real_app: MiniCPMApp, pdf_corpus_path: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "papers"
    folder.mkdir()
    shutil.copy(pdf_corpus_path / "clean" / "minimal-document.pdf", folder)
    shutil.copy(pdf_corpus_path / "hostile" / "issue15590.pdf", folder)
    (folder / "link.pdf").symlink_to(pdf_corpus_path / "clean" / "tracemonkey.pdf")
    async with real_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        library = real_app.screen
        assert isinstance(library, LibraryScreen)
        documents = library.query_one("#documents", DataTable)
        await wait_until(pilot, lambda: documents.row_count > 0 and documents.has_focus)
        await pilot.press("a")
        path = library.query_one("#library-path", PathInput)
        await wait_until(pilot, lambda: path.has_focus)
        path.value = str(folder)
        await pilot.press("enter")
        summary = library.query_one("#ingest-summary", Label)
        await wait_until(pilot, lambda: str(summary.render()).startswith("Done"), timeout=120)
        assert not library.ingesting

        results = rows_by_name(library.query_one("#ingest-files", DataTable))
        assert "indexed" in results["minimal-document.pdf"][1]
        assert "failed" in results["issue15590.pdf"][1] and results["issue15590.pdf"][4]
        assert "skipped" in results["link.pdf"][1] and "link" in results["link.pdf"][4]
        rows = rows_by_name(library.query_one("#documents", DataTable))
        assert rows["minimal-document.pdf"][4] == "ok"
        assert str(rows["issue15590.pdf"][4]).startswith("failed"), "listed with its reason"


async def test_first_run_without_minicpm_continues_on_the_demo_model(
    locations: Locations,
) -> None:
    settings = small_settings()
    service = AssistantService(settings, locations)
    app = make_app(settings, locations, service=service)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(
                pilot,
                lambda: isinstance(app.screen, FirstRunScreen) and bool(app.screen.query(Button)),
            )
            labels = [str(b.label) for b in app.screen.query(Button)]
            assert labels[0].startswith("Download MiniCPM")
            assert "Add a folder…" in labels
            app.screen.query_one("#demo", Button).press()
            await wait_until(pilot, lambda: isinstance(app.screen, ChatScreen))
            await wait_until(pilot, lambda: app.model_status is not None, timeout=60)
            assert app.model_status is not None and app.model_status.is_demo
            status = str(app.screen.query_one(StatusBar).render())
            assert "gemma3-270m-demo (offline demo model)" in status
    finally:
        service.close()
    assert (locations.data_dir / FIRST_RUN_MARKER).exists()


async def test_a_broken_gguf_is_refused_and_the_current_model_kept(
    real_app: MiniCPMApp, tmp_path: Path
) -> None:
    broken = tmp_path / "MiniCPM-broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    async with real_app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: real_app.model_status is not None, timeout=60)
        await pilot.press("f4")
        real_app.screen.query_one("#gguf-path", PathInput).value = str(broken)
        real_app.screen.query_one("#gguf-add", Button).press()

        def errors() -> list[Notification]:
            return [n for n in real_app._notifications if n.severity == "error"]

        await wait_until(pilot, lambda: bool(errors()), what="the failure", timeout=60)

        failure = errors()[-1]
        assert not real_app.model_loading
        assert failure.severity == "error" and "MiniCPM-broken.gguf" in failure.message
        assert "Models screen" in failure.message, "says what to do next"
        assert real_app.model_status is not None and real_app.model_status.is_demo
