"""Reaching the Chroma server of a shared library (``[store] url``), with one clear error.

Every call to the server goes through :class:`Guarded`, so a server that is down, restarting or
unreachable is a :class:`ServerUnavailableError` naming the URL wherever it happens, never a
traceback from the HTTP layer. Nothing is recorded locally before the server has what it
describes (see :mod:`rag.shared`), so such an error loses nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from rag.config import StoreConfig
from rag.errors import LibraryError, ServerUnavailableError
from rag.permissions import private_dir


@contextmanager
def reaching(url: str) -> Iterator[None]:
    """Turn the ways a server can be out of reach into one line that names it."""
    try:
        yield
    except httpx.TransportError as error:
        raise _unreachable(url, str(error) or type(error).__name__) from None
    except ValueError as error:  # chromadb's own wording when the first request fails
        if "could not connect" not in str(error).lower():
            raise
        raise _unreachable(url, "no answer") from None


def _unreachable(url: str, reason: str) -> ServerUnavailableError:
    return ServerUnavailableError(
        f"cannot reach the Chroma server at {url} ({reason}); start it or correct [store] url. "
        "Nothing indexed is lost: run the same command again once the server answers"
    )


class Guarded:
    """A chromadb client or collection whose calls raise :class:`ServerUnavailableError`."""

    def __init__(self, target: Any, url: str) -> None:
        self._target = target
        self._url = url

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            with reaching(self._url):
                result = value(*args, **kwargs)
            return Guarded(result, self._url) if hasattr(result, "upsert") else result

        return call


def connect(config: StoreConfig) -> Guarded:
    """A client of the configured server (tenant and database as configured)."""
    from rag.chroma_import import ChromaError, Settings, chromadb, unchecked_overrides

    assert config.url is not None
    parts = urlsplit(config.url)
    headers = {"Authorization": f"Bearer {config.token}"} if config.token else None
    with reaching(config.url), unchecked_overrides():
        try:
            client = chromadb.HttpClient(
                host=parts.hostname or "localhost",
                port=parts.port or (443 if parts.scheme == "https" else 8000),
                ssl=parts.scheme == "https",
                headers=headers,
                tenant=config.tenant,
                database=config.database,
                settings=Settings(anonymized_telemetry=False),
            )
        except ChromaError as error:  # a wrong token, tenant or database
            raise LibraryError(
                f"the Chroma server at {config.url} refused the library: {error} (check [store] "
                "token, tenant and database)"
            ) from None
    return Guarded(client, config.url)


def machine_id(index_dir: Path) -> str:
    """This machine's name in a shared library: made once, kept with the local index, so
    separate local states (two laptops, two test libraries) are separate owners."""
    path = private_dir(index_dir) / "machine-id"
    try:
        with path.open("x") as handle:  # exclusive: two processes starting at once agree
            handle.write(uuid.uuid4().hex + "\n")
    except FileExistsError:
        pass
    return path.read_text().strip()
