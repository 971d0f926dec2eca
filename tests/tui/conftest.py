"""Fixtures for the app's tests: a scripted service for UI tests, helpers to wait on workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.locations import Locations
from assistant.settings import Settings
from rag.types import DocumentRecord
from tests.tui.fakes import FakeService
from tui.app import FIRST_RUN_MARKER, MiniCPMApp, make_app


@pytest.fixture
def locations(isolated_home: Path) -> Locations:
    return Locations.default().ensure()


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def fake_service(locations: Locations) -> FakeService:
    """A service with a MiniCPM model and one indexed document, so no first-run dialog shows."""
    service = FakeService(locations)
    service.documents_list.append(
        DocumentRecord("/docs/tracemonkey.pdf", "default", "h", 14, 60, 1_700_000_000.0)
    )
    return service


@pytest.fixture
def fake_app(settings: Settings, locations: Locations, fake_service: FakeService) -> MiniCPMApp:
    (locations.data_dir / FIRST_RUN_MARKER).touch()
    return make_app(settings, locations, service=fake_service)


@pytest.fixture
def new_user_service(locations: Locations) -> FakeService:
    """No MiniCPM model on disk and no documents."""
    return FakeService(locations, minicpm_on_disk=False)


@pytest.fixture
def new_user_app(
    settings: Settings, locations: Locations, new_user_service: FakeService
) -> MiniCPMApp:
    """A first start: no MiniCPM model on disk, no documents, the welcome not seen yet."""
    return make_app(settings, locations, service=new_user_service)
