"""The one error hierarchy the user sees.

``rag`` and ``models`` sit below ``assistant`` and cannot import it, so each has its own base
(:class:`rag.errors.LibraryError`, :class:`models.errors.ModelError`) with the same ``title`` and
``message`` shape. :data:`USER_ERRORS` is the tuple the CLI and TUI catch to show one clear line.
"""

from __future__ import annotations

from models.errors import ModelError
from rag.errors import LibraryError


class AssistantError(Exception):
    """Base of errors raised by the headless core."""

    title = "Error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(AssistantError):
    title = "Bad configuration"


class ConversationNotFoundError(AssistantError):
    title = "No such conversation"


class StorageError(AssistantError):
    title = "Conversation store"


class UsageError(AssistantError):
    title = "Bad usage"


USER_ERRORS: tuple[type[Exception], ...] = (AssistantError, ModelError, LibraryError)


def describe(error: BaseException) -> str:
    """One line for the user: ``Title: message``."""
    title = getattr(error, "title", type(error).__name__)
    message = getattr(error, "message", str(error))
    return f"{title}: {message}"
