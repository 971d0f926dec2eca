"""Fixtures of the library tests: one real MiniLM for the session, libraries on real disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real default model, loaded once for all tests."""
    return Embedder("all-MiniLM-L6-v2")


@pytest.fixture
def make_library(tmp_path: Path, embedder: Embedder) -> Iterator[Callable[..., Library]]:
    """Build libraries in this test's directory sharing the session embedder."""
    made: list[Library] = []

    def make(index_dir: Path | None = None, **settings: object) -> Library:
        library = Library(index_dir or tmp_path / "index", LibraryConfig(**settings))
        if library.config.embedding_model == embedder.model_name:
            library.use_embedder(embedder)
        made.append(library)
        return library

    yield make
    for library in made:
        library.close()
