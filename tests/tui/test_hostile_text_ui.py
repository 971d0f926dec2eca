"""Hostile documents in the TUI, on the real stack: names and text show as written, never as markup,
and nothing on screen carries a terminal control character.

The library screen ingests a folder of hostile notes (MiniLM, Chroma, SQLite); a question is
answered by a real llama.cpp model (the tiny MiniCPM GGUF: random weights over a vocabulary with all
256 byte tokens, so its answer is arbitrary bytes); every screen is checked as drawn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.widgets import DataTable, Label, OptionList

from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from tests.assistant.test_hostile_text import ESCAPES, HOSTILE_NOTE, MARKUP
from tests.fixtures_models import tiny_minicpm_models
from tests.tui.test_real_stack import ask, chat, rows_by_name
from tests.tui.waiting import wait_until
from tui.app import FIRST_RUN_MARKER, MiniCPMApp, make_app
from tui.screens.dialogs import SourceScreen
from tui.screens.library import LibraryScreen
from tui.widgets.path_input import PathInput
from tui.widgets.sources_panel import SourcesPanel

pytestmark = pytest.mark.slow

NAMES = ("paper [v2] final.md", "[link=https:evil.example]click.md", "[bold]x[italic]y.md")
QUESTION = f"Side exits [/] {MARKUP} when?"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_screen_inert(app: MiniCPMApp) -> str:
    """The screen as drawn (an SVG of its text) holds no control character; returns it."""
    drawn = app.export_screenshot()
    assert not _CONTROL.findall(drawn.replace("\n", ""))
    return drawn


@pytest.fixture
def hostile_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MiniCPMApp]:
    for name, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}.items():
        monkeypatch.setenv(name, value)
    locations = Locations.under(tmp_path / "home").ensure()
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    settings = Settings()
    settings.engine.model = str(tiny_minicpm_models(tmp_path / "models")["q4_k_m"])
    settings.chat.answer_tokens = 48
    service = AssistantService(settings, locations)
    yield make_app(settings, locations, service=service)
    service.close()


async def test_hostile_names_and_text_in_library_chat_sources_and_notifications(
    hostile_app: MiniCPMApp, tmp_path: Path
) -> None:
    folder = tmp_path / "hostile"
    (folder / "notes[").mkdir(parents=True)
    for name in (*NAMES, "notes[/].md"):
        (folder / name).write_text(f"{HOSTILE_NOTE}\n{name}\n", encoding="utf-8")
    app = hostile_app
    seen: list[Message] = []  # every notice, also those whose time on screen is over
    async with app.run_test(size=(160, 40), message_hook=seen.append) as pilot:
        await pilot.press("f3")
        library = app.screen
        assert isinstance(library, LibraryScreen)
        library.query_one(PathInput).value = str(folder)
        await pilot.click("#library-add-button")
        summary = library.query_one("#ingest-summary", Label)
        await wait_until(pilot, lambda: str(summary.render()).startswith("Done"), timeout=120)
        results = rows_by_name(library.query_one("#ingest-files", DataTable))
        assert set(results) == {*NAMES, "].md"}  # whole names, "notes[/].md" did not crash
        assert all("indexed" in row[1] for row in results.values())
        documents = rows_by_name(library.query_one("#documents", DataTable))
        assert set(documents) == {*NAMES, "].md"}
        def notices() -> list[Notification]:
            return [message.notification for message in seen if isinstance(message, Notify)]

        await wait_until(pilot, lambda: bool(notices()), what="the ingest's notice")
        assert not any(notice.markup for notice in notices())
        drawn = assert_screen_inert(app)
        assert "paper [v2] final.md" in drawn.replace("&#160;", " ")

        await pilot.press("f2")
        await ask(pilot, app, QUESTION)
        await wait_until(pilot, lambda: not chat(app).generating, timeout=120)
        sources = app.screen.query_one(SourcesPanel).sources
        assert sources and all(Path(s.file).name in (*NAMES, "].md") for s in sources)
        assert all("\x1b" not in s.text and ESCAPES not in s.text for s in sources)
        assert MARKUP in sources[0].text  # cleaned at ingest, shown as data
        conversations = app.screen.query_one("#conversation-options", OptionList)
        titles = [
            str(conversations.get_option_at_index(i).prompt)
            for i in range(conversations.option_count)
        ]
        assert titles and titles[0].startswith("Side exits [/]")
        assert_screen_inert(app)

        options = app.screen.query_one("#source-options", OptionList)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, SourceScreen))
        heading = str(app.screen.query_one(".dialog-title", Label).render())
        assert Path(sources[0].file).name in heading
        assert_screen_inert(app)
