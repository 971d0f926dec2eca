"""What every screen of the app shares: typed access to the app and its service, and how a
failure below the UI is reported instead of taking the session down."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from textual.app import App
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from assistant.errors import USER_ERRORS
from tui.commands import Command

T = TypeVar("T")

if TYPE_CHECKING:
    from tui.app import MiniCPMApp
    from tui.service_protocol import Service


def failure(error: BaseException) -> tuple[str, str]:
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


class ReportsWorkerFailures:
    """One handler for the thread workers of the app and its screens: a worker just raises
    (``exit_on_error=False``) and its owner puts the UI back in ``worker_failed``, instead of
    each worker catching its own errors and posting a failure message."""

    async def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        error = event.worker.error
        if event.state is WorkerState.ERROR and error is not None:
            await self.worker_failed(event.worker.group, *failure(error))

    async def worker_failed(self, group: str, title: str, message: str) -> None:
        """A worker of ``group`` raised; ``title`` and ``message`` say what went wrong. Every
        owner of workers says how its UI recovers."""
        raise NotImplementedError(f"no failure handling for the worker group {group!r}")


class AppScreen(Screen[None], ReportsWorkerFailures):
    """A full screen (mode) of :class:`tui.app.MiniCPMApp`."""

    ACTIONS: ClassVar[tuple[Command, ...]] = ()
    """This screen's keys and the commands it adds to the command palette."""

    @property
    def assistant_app(self) -> MiniCPMApp:
        return cast("MiniCPMApp", self.app)

    @property
    def service(self) -> Service:
        return self.assistant_app.service

    def attempt(self, doing: str, call: Callable[[], T]) -> tuple[bool, T | None]:
        return attempt(self.app, doing, call)
