"""Save SVG screenshots of the app's main screens into docs/screenshots/ for the README.

Runs the real stack in a temporary home: indexes tracemonkey.pdf from the shared corpus, asks
one question with the offline demo model, then captures each screen headlessly.
Run: ``.venv/bin/python scripts/screenshots.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from textual.pilot import Pilot

from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from tui.app import FIRST_RUN_MARKER, MiniCPMApp, make_app
from tui.screens.chat import ChatScreen
from tui.widgets.prompt import PromptInput

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "screenshots"
PDF = REPO.parent / "shared" / "pdf-corpus" / "clean" / "tracemonkey.pdf"
QUESTION = "What is TraceMonkey and how does it speed up JavaScript?"


async def settle(pilot: Pilot[None], condition: object = None, timeout: float = 300) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while callable(condition) and not condition() and loop.time() < deadline:
        await pilot.pause(0.1)
    await pilot.pause(0.3)


def save(app: MiniCPMApp, name: str) -> None:
    app.save_screenshot(filename=f"{name}.svg", path=str(OUT))
    print(f"saved {OUT / name}.svg")


async def ask_and_tour(app: MiniCPMApp, service: AssistantService) -> None:
    """Ask one question at 120x34, then capture chat, library, models and help."""
    async with app.run_test(size=(120, 34)) as pilot:
        await settle(pilot, lambda: app.model_status is not None)
        app.clear_notifications()
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        screen.query_one(PromptInput).text = QUESTION
        await pilot.press("enter")
        await settle(pilot, lambda: not screen.generating)
        save(app, "chat")
        for key, name in (("f3", "library"), ("f4", "models"), ("f1", "help")):
            await pilot.press(key)
            await settle(pilot)
            app.clear_notifications()
            await settle(pilot)
            save(app, name)


async def narrow_chat(app: MiniCPMApp, service: AssistantService) -> None:
    """The same conversation reopened in an 80x24 terminal."""
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: app.model_status is not None)
        app.clear_notifications()
        screen = app.screen
        assert isinstance(screen, ChatScreen)
        await screen.open_conversation(service.list_conversations()[0].id)
        await settle(pilot)
        save(app, "chat-80x24")


async def first_run_screen(settings: Settings, home: Path) -> None:
    locations = Locations.under(home).ensure()
    service = AssistantService(settings, locations)
    app = make_app(settings, locations, service=service)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: app.model_status is not None)
        app.clear_notifications()
        await settle(pilot)
        save(app, "first-run")
    service.close()


async def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    settings.chat.answer_tokens = 160
    with tempfile.TemporaryDirectory() as tmp:
        await first_run_screen(settings, Path(tmp) / "fresh")
        locations = Locations.under(Path(tmp) / "home").ensure()
        (locations.data_dir / FIRST_RUN_MARKER).touch()
        service = AssistantService(settings, locations)
        try:
            report = service.ingest([PDF])
            print(f"indexed: {[r.status for r in report.results]}")
            await ask_and_tour(make_app(settings, locations, service=service), service)
            await narrow_chat(make_app(settings, locations, service=service), service)
        finally:
            service.close()


if __name__ == "__main__":
    asyncio.run(main())
