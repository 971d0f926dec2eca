"""UI behaviour of the library, models and first-run screens on a scripted service."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import pytest
from textual.pilot import Pilot
from textual.widgets import Button, DataTable, Input, ProgressBar

from assistant.conversations import ConversationSummary
from assistant.locations import Locations
from assistant.settings import Settings
from models.errors import ModelDownloadError
from tests.tui.fakes import FakeService
from tests.tui.waiting import wait_until
from tui.app import FIRST_RUN_MARKER, MiniCPMApp, make_app
from tui.screens.chat import ChatScreen
from tui.screens.first_run import FirstRunScreen
from tui.screens.library import LibraryScreen
from tui.screens.models import ModelsScreen
from tui.widgets.path_input import PathInput, PathSuggester
from tui.widgets.prompt import PromptInput
from tui.widgets.status_bar import StatusBar


async def test_library_bad_path_is_reported_and_kept(
    fake_app: MiniCPMApp, tmp_path: Path, fake_service: FakeService
) -> None:
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        assert isinstance(fake_app.screen, LibraryScreen)
        path = fake_app.screen.query_one(PathInput)
        await wait_until(pilot, lambda: not path.has_focus, what="the documents table's focus")
        await pilot.press("a")
        await wait_until(pilot, lambda: path.has_focus)
        path.value = str(tmp_path / "missing")
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(fake_app._notifications))
        assert "does not exist" in list(fake_app._notifications)[-1].message
        assert fake_app.screen.query_one(PathInput).value.endswith("missing")
        assert fake_service.ingested == []


async def test_library_ingest_shows_each_file_and_the_documents(
    fake_app: MiniCPMApp, tmp_path: Path
) -> None:
    for name in ("a.pdf", "b.pdf", "c.docx"):
        (tmp_path / name).write_bytes(b"x")
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        library = fake_app.screen
        assert isinstance(library, LibraryScreen)
        library.query_one(PathInput).value = str(tmp_path)
        await pilot.click("#library-add-button")
        await wait_until(pilot, lambda: not library.ingesting, what="the ingest")

        files = library.query_one("#ingest-files", DataTable)
        rows = [files.get_row_at(i) for i in range(files.row_count)]
        assert [str(row[0]) for row in rows] == ["a.pdf", "b.pdf", "c.docx"]  # plain Text cells
        assert "failed" in rows[2][1] and str(rows[2][4]) == "not a PDF or text file"
        bar = library.query_one("#ingest-progress", ProgressBar)
        assert bar.progress == bar.total == 3
        documents = library.query_one("#documents", DataTable)
        assert documents.row_count == 3, "tracemonkey.pdf plus the two new PDFs"
        assert fake_app.ingest_activity == ""


async def test_models_screen_downloads_with_progress_and_validates_gpu_layers(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        models = fake_app.screen
        assert isinstance(models, ModelsScreen)
        table = models.query_one("#catalog", DataTable)
        assert table.row_count == 3
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("d")
        await wait_until(pilot, lambda: models.downloading is None, what="the download")
        bar = models.query_one("#download-progress", ProgressBar)
        assert bar.progress == bar.total == 1000

        layers = models.query_one("#gpu-layers", Input)
        layers.value = "lots"
        layers.focus()
        await pilot.press("enter")
        assert "must be" in list(fake_app._notifications)[-1].message
        layers.value = "0"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not fake_app.model_loading)
        assert fake_service.gpu_layers_asked[-1] == 0  # this reload, on the new offload
        assert fake_app.settings.engine.n_gpu_layers == "auto"  # the settings as written


async def welcome(pilot: Pilot[None], app: MiniCPMApp) -> FirstRunScreen:
    """Wait for the first-run dialog to be up with its first choice focused."""

    def shown() -> bool:
        screen = app.screen
        # query, not query_one: the dialog may be pushed and not yet composed
        return isinstance(screen, FirstRunScreen) and any(
            choice.has_focus for choice in screen.query("#download")
        )

    await wait_until(pilot, shown, what="the first-run dialog")
    return cast(FirstRunScreen, app.screen)


async def test_first_run_without_minicpm_or_documents_offers_the_ways_forward(
    new_user_app: MiniCPMApp, settings: Settings, locations: Locations
) -> None:
    app = new_user_app
    async with app.run_test(size=(100, 30)) as pilot:
        dialog = await welcome(pilot, app)
        labels = [str(button.label) for button in dialog.query(Button)]
        assert labels == [
            "Download MiniCPM-2B DPO (1.6 GB)",
            "Continue with the demo model",
            "Add a folder…",
            "Download multilingual-e5-small (0.5 GB)",
        ]
        dialog.query_one("#add-folder", Button).press()
        await wait_until(pilot, lambda: isinstance(app.screen, LibraryScreen))
        await wait_until(pilot, lambda: app.screen.query_one(PathInput).has_focus)
    assert (locations.data_dir / FIRST_RUN_MARKER).exists()

    again = make_app(settings, locations, service=app.service)
    async with again.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(again.screen, ChatScreen), "the welcome is shown once"


async def test_first_run_choices_work_from_the_keyboard(
    new_user_app: MiniCPMApp, locations: Locations
) -> None:
    async with new_user_app.run_test(size=(100, 30)) as pilot:
        await welcome(pilot, new_user_app)
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: isinstance(new_user_app.screen, ChatScreen))
    assert (locations.data_dir / FIRST_RUN_MARKER).exists()


async def test_first_run_local_gguf_switches_to_it(
    new_user_app: MiniCPMApp, tmp_path: Path, new_user_service: FakeService
) -> None:
    gguf = tmp_path / "MiniCPM-2B.Q4_K_M.gguf"
    gguf.write_bytes(b"GGUF")
    async with new_user_app.run_test(size=(100, 30)) as pilot:
        path = (await welcome(pilot, new_user_app)).query_one(PathInput)
        path.value = str(gguf)
        path.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: new_user_service.switched_to == [str(gguf)])


async def test_path_suggester_completes_folders(tmp_path: Path) -> None:
    (tmp_path / "papers").mkdir()
    (tmp_path / "paper.gguf").write_bytes(b"")
    folders = PathSuggester(directories_only=True)
    assert await folders.get_suggestion(str(tmp_path / "pap")) == str(tmp_path / "papers") + "/"
    models = PathSuggester(directories_only=False, suffix=".gguf")
    assert await models.get_suggestion(str(tmp_path / "paper.")) == str(tmp_path / "paper.gguf")
    assert await folders.get_suggestion(str(tmp_path / "nothing" / "x")) is None


async def test_indexing_keeps_running_while_chatting(
    fake_app: MiniCPMApp, tmp_path: Path, fake_service: FakeService
) -> None:
    fake_service.ingest_gate = threading.Event()
    for name in ("a.pdf", "b.pdf", "c.pdf"):
        (tmp_path / name).write_bytes(b"x")
    async with fake_app.run_test(size=(120, 36)) as pilot:
        await pilot.press("f3")
        library = fake_app.screen
        assert isinstance(library, LibraryScreen)
        library.start_ingest([tmp_path], "default")
        await pilot.press("f2")
        chat = fake_app.screen
        assert isinstance(chat, ChatScreen)
        await wait_until(pilot, lambda: "indexing" in str(chat.query_one(StatusBar).render()))
        chat.query_one(PromptInput).text = "asked while indexing"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not chat.generating, what="the answer")
        assert library.ingesting, "the answer came while indexing went on"
        fake_service.ingest_gate.set()
        await wait_until(pilot, lambda: not library.ingesting, what="the ingest")
        assert any(n.title == "Indexing finished" for n in fake_app._notifications)
        assert "indexing" not in str(chat.query_one(StatusBar).render())


async def test_failed_download_is_explained(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    fake_service.download_error = ModelDownloadError("huggingface.co is unreachable")
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f4")
        models = fake_app.screen
        assert isinstance(models, ModelsScreen)
        models.start_download("minicpm-1b")
        await wait_until(pilot, lambda: models.downloading is None)
        note = list(fake_app._notifications)[-1]
        assert note.title == "Download failed" and "unreachable" in note.message
        assert "local GGUF" in note.message, "says what to do next"
        assert not models.query_one("#download-progress", ProgressBar).display, "no busy bar"


async def test_a_broken_service_call_becomes_a_notification(
    fake_app: MiniCPMApp, fake_service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        chat = fake_app.screen
        assert isinstance(chat, ChatScreen)

        def broken(query: str | None = None) -> list[ConversationSummary]:
            raise RuntimeError("database disk image is malformed")

        monkeypatch.setattr(fake_service, "list_conversations", broken)
        await pilot.press("ctrl+f", "x")
        await pilot.pause()
        assert fake_app.is_running
        assert any("malformed" in n.message for n in fake_app._notifications)
        await chat.open_conversation("no-such-id")
        await pilot.pause()
        assert any(n.title == "Cannot open the conversation" for n in fake_app._notifications)


async def test_enter_on_a_model_on_disk_switches_to_it(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: fake_app.model_status is not None)
        await pilot.press("f4")
        models = fake_app.screen
        assert isinstance(models, ModelsScreen)
        table = models.query_one("#catalog", DataTable)
        table.focus()
        table.move_cursor(row=2)
        await pilot.press("enter")
        await wait_until(pilot, lambda: fake_service.switched_to == ["gemma3-270m-demo"])
        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert fake_service.switched_to == ["gemma3-270m-demo"], "not on disk: nothing to load"
        assert "press d to download" in list(fake_app._notifications)[-1].message


async def test_a_theme_picked_in_the_app_is_saved_for_the_next_start(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    fake_app.settings.ui.theme = "no-such-theme"
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert fake_app.theme == "minicpm"
        assert fake_service.saved_themes == [], "the fallback at start-up is not saved"
        fake_app.theme = "nord"
        await wait_until(pilot, lambda: fake_service.saved_themes == ["nord"], what="the save")


async def test_reindex_all_of_an_empty_collection_says_what_to_do(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    fake_service.documents_list.clear()
    async with fake_app.run_test(size=(100, 30)) as pilot:
        await pilot.press("f3")
        library = fake_app.screen
        assert isinstance(library, LibraryScreen)
        await library.run_action("reindex_all")
        await pilot.pause()
        assert not library.ingesting and fake_service.ingested == []
        assert "add a folder" in list(fake_app._notifications)[-1].message


async def test_first_run_arrow_keys_move_between_the_choices(
    new_user_app: MiniCPMApp, locations: Locations
) -> None:
    async with new_user_app.run_test(size=(100, 30)) as pilot:
        dialog = await welcome(pilot, new_user_app)
        await pilot.press("down")
        assert dialog.query_one("#demo").has_focus
        await pilot.press("down")
        assert dialog.query_one("#first-run-gguf").has_focus
        await pilot.press("up", "up")
        assert dialog.query_one("#download").has_focus
        await pilot.press("up")
        assert dialog.query_one("#download").has_focus, "stays on the first choice"
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: not new_user_app.welcoming, what="the choice")
        await pilot.pause()
        assert new_user_app.current_mode == "chat", "continued on the demo model, no download"
        assert isinstance(new_user_app.screen, ChatScreen)
    assert (locations.data_dir / FIRST_RUN_MARKER).exists()
