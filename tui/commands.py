"""Actions declared once: the key and footer label (``BINDINGS``) and the command palette line.

The app and each screen list their actions in ``ACTIONS``; ``bindings`` derives ``BINDINGS`` from
it and :class:`AssistantCommands` offers the app's and the current screen's in Ctrl+P, so every
action a key reaches is also one search away, and neither list can forget the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.screen import Screen


@dataclass(frozen=True)
class Command:
    """One action: what the palette says about it and, when it has one, its key."""

    action: str
    """A Textual action string, run on the app or on the screen that declares it."""
    title: str | None = None
    """The palette's line; ``None`` for a key only (one reaching an action the app offers)."""
    help: str = ""
    key: str | None = None
    label: str = ""
    """The footer's name for the key."""
    show: bool = True
    """Whether the footer shows the key."""


def bindings(commands: Iterable[Command]) -> list[BindingType]:
    """``BINDINGS`` for the commands that have a key, in their order (the footer's)."""
    return [
        Binding(command.key, command.action, command.label, show=command.show)
        for command in commands
        if command.key is not None
    ]


class AssistantCommands(Provider):
    """Offers the palette commands of ``App.ACTIONS`` and of the current screen's ``ACTIONS``."""

    def _commands(self) -> Iterator[tuple[str, Command, App[object] | Screen[object]]]:
        for owner in (self.app, self.screen):
            for command in getattr(owner, "ACTIONS", ()):
                if command.title is not None:
                    yield command.title, command, owner

    async def discover(self) -> Hits:
        for title, command, target in self._commands():
            yield DiscoveryHit(title, partial(target.run_action, command.action), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, command, target in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(target.run_action, command.action),
                    help=command.help,
                )
