"""Errors of the document library, each with a short title and a message the user can act on."""

from __future__ import annotations


class LibraryError(Exception):
    """Base of every library error the user should see as one clear line."""

    title = "Library error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LibraryBusyError(LibraryError):
    title = "Library is busy"


class IngestError(LibraryError):
    title = "Ingest failed"


class CollectionNotFoundError(LibraryError):
    title = "No such collection"


class ServerUnavailableError(LibraryError):
    title = "Library server unreachable"
