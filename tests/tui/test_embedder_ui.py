"""The embedding models on the Models screen and in the first-run dialog (scripted service,
real embedding catalog and models folder)."""

from __future__ import annotations

from textual.widgets import Button, DataTable, ProgressBar
from textual.widgets.data_table import RowDoesNotExist

from tests.tui.fakes import FakeService
from tests.tui.test_screens_ui import welcome
from tests.tui.waiting import wait_until
from tui.app import MiniCPMApp
from tui.screens.models import ModelsScreen


def _marked(table: DataTable[object]) -> list[str]:
    """Names of the rows marked in use (●)."""
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count) if table.get_row_at(i)[0]]


async def test_download_an_embedder_then_switch_the_collection_to_it(
    fake_app: MiniCPMApp, fake_service: FakeService
) -> None:
    seen: list[object] = []
    async with fake_app.run_test(size=(100, 30), message_hook=seen.append) as pilot:
        await pilot.press("f4")
        models = fake_app.screen
        assert isinstance(models, ModelsScreen)
        table = models.query_one("#embedders", DataTable)
        assert _marked(table) == ["all-MiniLM-L6-v2"]
        table.focus()
        table.move_cursor(row=1)
        await pilot.press("enter")
        assert "not downloaded yet" in list(fake_app._notifications)[-1].message
        assert fake_service.switched_embedders == []

        await pilot.press("d")
        await wait_until(pilot, lambda: models.downloading is None, what="the download")
        assert str(table.get_row_at(1)[5]) == "yes"
        await pilot.press("enter")
        await wait_until(pilot, lambda: models.switching is None, what="the switch")

        assert fake_service.switched_embedders == [("multilingual-e5-small", "default")]
        assert _marked(table) == ["multilingual-e5-small"]
        progressed = {m.done for m in seen if isinstance(m, ModelsScreen.EmbedderSwitchProgressed)}
        assert progressed == {0, 20, 40}  # each message is seen where it bubbles, too
        assert any(isinstance(m, ModelsScreen.EmbedderSwitched) for m in seen)
        bar = models.query_one("#download-progress", ProgressBar)
        assert bar.progress == bar.total == 40


async def test_first_run_offers_the_multilingual_embedder_and_downloads_it(
    new_user_app: MiniCPMApp,
) -> None:
    async with new_user_app.run_test(size=(100, 30)) as pilot:
        dialog = await welcome(pilot, new_user_app)
        dialog.query_one("#download-embedder", Button).press()
        await wait_until(pilot, lambda: isinstance(new_user_app.screen, ModelsScreen))
        models = new_user_app.screen
        assert isinstance(models, ModelsScreen)
        table = models.query_one("#embedders", DataTable)

        def downloaded() -> bool:
            try:
                return str(table.get_row("multilingual-e5-small")[5]) == "yes"
            except RowDoesNotExist:  # the screen fills its tables after it is shown
                return False

        await wait_until(pilot, downloaded, what="the embedding model's download")
