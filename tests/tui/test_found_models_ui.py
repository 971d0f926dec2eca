"""The Models screen's scan (s): GGUFs of other apps listed, linked and loaded with Enter.

The scan and the link are real (a temporary home with LM Studio's layout and real tiny GGUFs);
the rest of the service is the scripted one, as the test is about the screen.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from textual.widgets import DataTable

from assistant.locations import Locations
from assistant.settings import Settings
from models.scan import FoundModel, scan
from models.store import LocalModel, ModelStore
from tests.fixtures_models import build_minicpm_gguf
from tests.tui.fakes import FakeService
from tests.tui.waiting import wait_until
from tui.app import FIRST_RUN_MARKER, make_app
from tui.screens.models import ModelsScreen


@dataclass
class ScanningService(FakeService):
    def found_models(self) -> list[FoundModel]:
        return scan()

    def add_model(self, path: Path, name: str | None = None) -> LocalModel:
        return ModelStore(self.locations.models_dir).add(path, name)


@pytest.fixture
def other_apps_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "user"
    folder = home / ".lmstudio" / "models" / "openbmb" / "MiniCPM-tiny"
    folder.mkdir(parents=True)
    model = build_minicpm_gguf(folder / "MiniCPM-tiny-F32.gguf")
    shutil.copyfile(model, folder / "cut-short.gguf")
    with (folder / "cut-short.gguf").open("r+b") as file:
        file.truncate(300)
    monkeypatch.setenv("HOME", str(home))
    for name in ("HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "XDG_DATA_HOME", "OLLAMA_MODELS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLAMA_CACHE", str(tmp_path / "no-llama-cache"))
    return home


async def test_scan_lists_other_apps_models_and_enter_links_and_loads_one(
    other_apps_home: Path, settings: Settings, locations: Locations
) -> None:
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    service = ScanningService(locations)
    app = make_app(settings, locations, service=service)
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_until(pilot, lambda: app.model_status is not None)
        await pilot.press("f4")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one("#found", DataTable)
        assert not table.display
        await pilot.press("s")
        await wait_until(pilot, lambda: table.row_count == 2, what="the scan")
        assert table.display and table.has_focus
        assert [str(cell) for cell in table.get_row_at(0)][:2] == ["MiniCPM-tiny-F32", "minicpm"]
        assert "truncated GGUF" in str(table.get_row_at(1)[1])

        table.move_cursor(row=1)
        await pilot.press("enter")
        await pilot.pause()
        assert "truncated GGUF" in list(app._notifications)[-1].message
        assert service.switched_to == []

        table.move_cursor(row=0)
        await pilot.press("enter")
        link = locations.models_dir / "MiniCPM-tiny-F32.gguf"
        await wait_until(pilot, lambda: service.switched_to == [str(link)], what="the load")
        assert link.is_symlink() and link.resolve() == screen._found[0].path.resolve()
