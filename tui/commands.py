"""Command palette entries: the app's global actions plus those of the screen it was opened on.

Each screen lists its own commands in ``PALETTE`` next to the actions they run, so every action
the keys reach is also one search away in Ctrl+P.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from textual.app import App
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen


@dataclass(frozen=True)
class PaletteCommand:
    title: str
    help: str
    action: str
    """A Textual action string, run on the app or on the screen that declares it."""


class AssistantCommands(Provider):
    """Offers ``App.PALETTE`` and the current screen's ``PALETTE``."""

    def _commands(self) -> Iterator[tuple[PaletteCommand, App[object] | Screen[object]]]:
        for command in getattr(self.app, "PALETTE", ()):
            yield command, self.app
        for command in getattr(self.screen, "PALETTE", ()):
            yield command, self.screen

    async def discover(self) -> Hits:
        for command, target in self._commands():
            yield DiscoveryHit(
                command.title, partial(target.run_action, command.action), help=command.help
            )

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command, target in self._commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    partial(target.run_action, command.action),
                    help=command.help,
                )
