"""Snapshots of the main screens (pytest-textual-snapshot) on the scripted service: fixed sizes,
fixed data, UTC dates. Update after a deliberate UI change with ``pytest --snapshot-update``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from assistant.locations import Locations
from assistant.settings import Settings
from tests.tui.fakes import FakeService
from tests.tui.waiting import wait_until
from tui.app import MiniCPMApp, make_app
from tui.screens.chat import ChatScreen
from tui.screens.library import LibraryScreen
from tui.widgets.prompt import PromptInput

SnapCompare = Callable[..., bool]


@pytest.fixture(autouse=True)
def steady(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """UTC dates, and cursors that do not blink: a blink every 0.5 s would make the picture
    depend on how long the run took."""
    monkeypatch.setattr(TextArea, "_toggle_cursor_blink_visible", lambda self: None)
    monkeypatch.setattr(Input, "_toggle_cursor", lambda self: None)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def model_loaded(pilot: Pilot[None]) -> MiniCPMApp:
    app = pilot.app
    assert isinstance(app, MiniCPMApp)
    await wait_until(pilot, lambda: app.model_status is not None)
    return app


async def ask_question(pilot: Pilot[None]) -> None:
    app = await model_loaded(pilot)
    prompt = app.screen.query_one(PromptInput)
    prompt.text = "What is TraceMonkey?"
    await pilot.press("enter")
    screen = app.screen
    assert isinstance(screen, ChatScreen)
    await wait_until(pilot, lambda: not screen.generating)
    await pilot.pause()


def test_chat_wide(snap_compare: SnapCompare, fake_app: MiniCPMApp) -> None:
    assert snap_compare(fake_app, terminal_size=(130, 34), run_before=ask_question)


def test_chat_80x24(snap_compare: SnapCompare, fake_app: MiniCPMApp) -> None:
    assert snap_compare(fake_app, terminal_size=(80, 24), run_before=ask_question)


def test_library(snap_compare: SnapCompare, fake_app: MiniCPMApp, tmp_path: Path) -> None:
    for name in ("intro.pdf", "slides.pptx"):
        (tmp_path / name).write_bytes(b"x")

    async def ingest(pilot: Pilot[None]) -> None:
        await pilot.press("f3")
        screen = pilot.app.screen
        assert isinstance(screen, LibraryScreen)
        screen.start_ingest([tmp_path], "default")
        await wait_until(pilot, lambda: not screen.ingesting)
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(fake_app, terminal_size=(100, 30), run_before=ingest)


def test_models(snap_compare: SnapCompare, fake_app: MiniCPMApp) -> None:
    async def open_models(pilot: Pilot[None]) -> None:
        await model_loaded(pilot)
        await pilot.press("f4")
        await pilot.pause()

    assert snap_compare(fake_app, terminal_size=(100, 30), run_before=open_models)


def test_help(snap_compare: SnapCompare, fake_app: MiniCPMApp) -> None:
    assert snap_compare(fake_app, terminal_size=(100, 40), press=["f1"])


def test_first_run(snap_compare: SnapCompare, settings: Settings, locations: Locations) -> None:
    service = FakeService(locations, minicpm_on_disk=False)
    app = make_app(settings, locations, service=service)

    async def welcome(pilot: Pilot[None]) -> None:
        await wait_until(pilot, lambda: type(pilot.app.screen).__name__ == "FirstRunScreen")
        await model_loaded(pilot)

    assert snap_compare(app, terminal_size=(100, 30), run_before=welcome)
