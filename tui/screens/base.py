"""What every screen of the app shares: typed access to the app and its service."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.app import App
from textual.screen import Screen

from assistant.errors import USER_ERRORS
from tui.commands import PaletteCommand

T = TypeVar("T")

if TYPE_CHECKING:
    from assistant.service import AssistantService
    from tui.app import MiniCPMApp


def failure(error: Exception) -> tuple[str, str]:
    """Title and message to show for ``error``: the core's own errors as they are, anything
    else (a bug below the UI) named by its type, so that it is reported instead of fatal."""
    if isinstance(error, USER_ERRORS):
        return getattr(error, "title", "Error"), getattr(error, "message", str(error))
    return "Unexpected error", f"{type(error).__name__}: {error}"


def attempt(app: App[Any], doing: str, call: Callable[[], T]) -> tuple[bool, T | None]:
    """Run a quick service call on the UI thread; a failure becomes a notification saying what
    could not be done, never a crash. Returns (succeeded, result)."""
    try:
        return True, call()
    except Exception as error:  # a failure below the UI must not take the user's session down
        app.log.error(f"{doing} failed", error)
        app.notify(failure(error)[1], title=f"Cannot {doing}", severity="error", timeout=10)
    return False, None


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

    def attempt(self, doing: str, call: Callable[[], T]) -> tuple[bool, T | None]:
        return attempt(self.app, doing, call)
