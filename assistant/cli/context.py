"""What every command handler receives."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.locations import Locations
from assistant.settings import Settings


@dataclass
class CliContext:
    settings: Settings
    locations: Locations
    debug: bool = False
