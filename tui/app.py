"""Placeholder until the Textual app lands."""

from __future__ import annotations

from assistant.locations import Locations
from assistant.settings import Settings


def run_app(settings: Settings, locations: Locations) -> int:
    raise SystemExit("The terminal app is not built yet.")
