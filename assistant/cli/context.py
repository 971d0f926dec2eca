"""What every command handler receives, and its one way into the core."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from assistant.locations import Locations
from assistant.service import AssistantService
from assistant.settings import Settings


@dataclass
class CliContext:
    settings: Settings
    locations: Locations
    debug: bool = False

    @contextmanager
    def service(self) -> Iterator[AssistantService]:
        """The core service the TUI uses too, for one command; what it opened (library, model,
        conversation store) is closed when the command ends. It opens each on first use, so a
        command pays only for what it touches."""
        service = AssistantService(self.settings, self.locations)
        try:
            yield service
        finally:
            service.close()
