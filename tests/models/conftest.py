"""Real models for the model-side tests, built or assembled once per test session.

Other packages can use the same files through the plain functions in ``tests.fixtures_models``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import models.catalog
import models.store
from models.catalog import CatalogEntry, find_entry
from models.config import EngineConfig
from models.runtime import LlamaEngine
from models.store import LocalModel, ModelStore
from tests.fixtures_models import demo_gguf, tiny_minicpm_models


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny MiniCPM GGUFs: ``f32``, ``q4_k_m`` and ``chatml`` (see ``tiny_minicpm_models``)."""
    return tiny_minicpm_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def demo_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Gemma 3 270M demo GGUF from its PyPI package."""
    return demo_gguf(tmp_path_factory.mktemp("demo-model"))


def local(path: Path) -> LocalModel:
    return ModelStore(path.parent).resolve(str(path))


def load_tiny_engine(model_files: dict[str, Path]) -> LlamaEngine:
    """The Q4_K_M tiny MiniCPM with a fixed seed and small prefill batches."""
    return LlamaEngine.load(local(model_files["q4_k_m"]), EngineConfig(seed=7, n_batch=32))


@pytest.fixture(scope="module")
def tiny_engine(model_files: dict[str, Path]) -> Iterator[LlamaEngine]:
    """The tiny engine, loaded once per module (its KV cache carries over between tests)."""
    engine = load_tiny_engine(model_files)
    yield engine
    engine.close()


@pytest.fixture
def fresh_engine(model_files: dict[str, Path]) -> Iterator[LlamaEngine]:
    """The same model as ``tiny_engine`` with nothing in its KV cache yet."""
    engine = load_tiny_engine(model_files)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def demo_engine(demo_model_path: Path) -> Iterator[LlamaEngine]:
    engine = LlamaEngine.load(local(demo_model_path), EngineConfig(seed=1, max_context=2048))
    yield engine
    engine.close()


@pytest.fixture
def unpinned_minicpm3(monkeypatch: pytest.MonkeyPatch) -> CatalogEntry:
    """MiniCPM3-4B as an unpinned entry (no sha256, moving revisions) for the hub stand-ins.

    They serve tiny test files under its names, which the real, pinned entry rightly refuses.
    """
    pinned = find_entry("minicpm3-4b")
    assert pinned is not None and pinned.pinned
    entry = replace(
        pinned, sha256=None, size_exact=False, hf_revision="main", modelscope_revision="master"
    )
    catalog = tuple(entry if e.name == entry.name else e for e in models.catalog.CATALOG)
    monkeypatch.setattr(models.catalog, "CATALOG", catalog)
    monkeypatch.setattr(models.store, "CATALOG", catalog)
    return entry
