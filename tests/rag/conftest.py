"""Fixtures of the library tests: one real MiniLM for the session, libraries on real disk, and
the same libraries on a real Chroma server where a test asks for both backends.

A test runs on both with :data:`both_backends` (or a module's ``pytestmark``): its libraries
are then built once on the embedded store and once on a fresh database of the session's
``chroma run`` (:func:`tests.conftest.chroma_server`), with the same assertions. A test of
minutes has its server variant in ``make soak`` (:data:`both_backends_server_in_soak`). Tests
without either stay on the embedded store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.config import LibraryConfig, StoreConfig
from rag.embedder import Embedder
from rag.library import Library
from tests.chroma_server import ChromaServer

BACKENDS = ("embedded", "server")
both_backends = pytest.mark.parametrize("backend", BACKENDS)
"""Run a test on the embedded store and on the Chroma server (ids ``[embedded]``, ``[server]``)."""
BACKENDS_LONG_ON_SERVER = (
    "embedded",
    pytest.param(
        "server",
        marks=[
            pytest.mark.soak,
            pytest.mark.skipif(not os.environ.get("SOAK"), reason="a long run: `make soak`"),
        ],
    ),
)
"""For tests of minutes: the server variant runs with ``make soak``, not in CI's time."""
both_backends_server_in_soak = pytest.mark.parametrize("backend", BACKENDS_LONG_ON_SERVER)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model, loaded once for all tests."""
    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture
def backend() -> str:
    """Where this test's libraries keep their index; :data:`both_backends` parametrises it."""
    return "embedded"


def store_of(backend: str, request: pytest.FixtureRequest) -> StoreConfig | None:
    """None for the embedded store; else a database of its own on the session's server, so
    tests sharing the server stay independent."""
    if backend == "embedded":
        return None
    server: ChromaServer = request.getfixturevalue("chroma_server")
    return server.new_database()


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest) -> StoreConfig | None:
    """This test's ``[store]``: every library the test makes shares it (one server database)."""
    return store_of(backend, request)


def open_library(
    index_dir: Path, embedder: Embedder, store: StoreConfig | None, **settings: object
) -> Library:
    """A library on ``store`` using the loaded ``embedder`` when its settings name that model."""
    library = Library(index_dir, LibraryConfig.model_validate(settings), server=store)
    if library.config.embedding_model == embedder.model_name:
        library.use_embedder(embedder)
    return library


@pytest.fixture
def make_library(
    tmp_path: Path, embedder: Embedder, store: StoreConfig | None
) -> Iterator[Callable[..., Library]]:
    """Build libraries in this test's directory sharing the session embedder. On the server,
    each index folder is a machine of its own sharing the test's database."""
    made: list[Library] = []

    def make(index_dir: Path | None = None, **settings: object) -> Library:
        library = open_library(index_dir or tmp_path / "index", embedder, store, **settings)
        made.append(library)
        return library

    yield make
    for library in made:
        library.close()
