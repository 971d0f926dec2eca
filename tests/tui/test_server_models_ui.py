"""The Models screen with ``[llm] base_url`` set: the real service and a real model server
(llama-cpp-python's, serving SmolLM2-135M); the server's models are listed beside the local ones
and Enter switches to one, also back from a local model."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Label

from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings
from models.config import ServerConfig
from tests.fixtures_models import smollm2_gguf
from tests.models.model_server import SMOLLM2_ALIAS, LlamaCppServer, free_port, smollm2_server
from tests.tui.waiting import wait_until
from tui.app import FIRST_RUN_MARKER, make_app
from tui.screens.models import ModelsScreen
from tui.widgets.status_bar import describe_model

__all__ = ["smollm2_server"]  # a fixture

pytestmark = pytest.mark.slow


async def test_the_servers_models_are_listed_and_enter_switches_to_one(
    smollm2_server: LlamaCppServer, locations: Locations
) -> None:
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    settings = Settings(llm=ServerConfig(base_url=smollm2_server.base_url))
    service = AssistantService(settings, locations)
    app = make_app(settings, locations, service=service)
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_until(pilot, lambda: app.model_status is not None, what="the server's model")
        assert app.model_status is not None
        assert app.model_status.server_url == smollm2_server.base_url
        assert f"on {smollm2_server.base_url}" in str(describe_model(app.model_status))
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one("#server-models", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1, what="the server's models")
        assert [str(cell) for cell in table.get_row_at(0)] == ["●", SMOLLM2_ALIAS]

        app.load_model(str(smollm2_gguf()))  # the same GGUF, run here
        await wait_until(pilot, lambda: not app.model_loading, timeout=120, what="the local load")
        assert app.model_status is not None and app.model_status.server_url is None
        assert str(table.get_row_at(0)[0]) == ""

        table.focus()
        await pilot.press("enter")
        await wait_until(
            pilot,
            lambda: app.model_status is not None and app.model_status.server_url is not None,
            what="the switch back to the server",
        )
        assert str(table.get_row_at(0)[0]) == "●"
    service.close()


async def test_a_server_that_is_down_is_said_on_the_models_screen(locations: Locations) -> None:
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    url = f"http://127.0.0.1:{free_port()}/v1"
    settings = Settings(llm=ServerConfig(base_url=url))
    service = AssistantService(settings, locations)
    app = make_app(settings, locations, service=service)
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_until(pilot, lambda: not app.model_loading, what="the failed connect")
        assert any(url in note.message for note in app._notifications)
        await pilot.press("f4")
        title = app.screen.query_one("#server-title", Label)
        await wait_until(pilot, lambda: "cannot reach" in str(title.render()), what="the title")
        assert url in str(title.render())
    service.close()
