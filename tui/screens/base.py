"""What every screen of the app shares: typed access to the app and its service."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual.screen import Screen

from tui.commands import PaletteCommand

if TYPE_CHECKING:
    from assistant.service import AssistantService
    from tui.app import MiniCPMApp


class AppScreen(Screen[None]):
    """A full screen (mode) of :class:`tui.app.MiniCPMApp`."""

    PALETTE: ClassVar[tuple[PaletteCommand, ...]] = ()
    """Commands this screen adds to the command palette."""

    @property
    def assistant_app(self) -> MiniCPMApp:
        return cast("MiniCPMApp", self.app)

    @property
    def service(self) -> AssistantService:
        return self.assistant_app.service
