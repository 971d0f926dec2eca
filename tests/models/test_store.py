"""The models directory: listing, resolving names, adding local files, the demo default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.catalog import CATALOG, DEMO_ENTRY, find_entry
from models.errors import ModelDownloadError, ModelError, ModelLoadError, ModelNotFoundError
from models.store import ModelStore


def test_catalog_names_are_unique_and_minicpm_builds_come_with_sources() -> None:
    names = [entry.name for entry in CATALOG]
    assert len(names) == len(set(names))
    for entry in CATALOG:
        assert entry.template in ("minicpm2", "chatml", "gguf", "completion")
        if entry.is_minicpm and entry.pullable:
            assert entry.hf_repo and entry.hf_file and entry.hf_file.endswith(".gguf")
        if entry.sha256 is not None:
            assert len(entry.sha256) == 64 and entry.size_exact
    assert [e.name for e in CATALOG if e.is_demo] == ["gemma3-270m-demo"]
    assert not DEMO_ENTRY.is_minicpm and "NOT MiniCPM" in DEMO_ENTRY.title
    assert find_entry("MiniCPM5-1B-Q4_K_M.gguf") == find_entry("minicpm5-1b")


def test_default_is_the_demo_model_assembled_from_its_package(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    model = store.resolve(None)
    assert model.is_demo and model.entry == DEMO_ENTRY
    assert model.path == tmp_path / "gemma-3-270m-q4_k_m.gguf"
    assert model.path.stat().st_size == DEMO_ENTRY.size_bytes
    assert not list(tmp_path.glob("*.part"))
    assert [m.name for m in store.local_models()] == ["gemma3-270m-demo"]


def test_minicpm_on_disk_wins_over_the_demo(
    tmp_path: Path, model_files: dict[str, Path], demo_model_path: Path
) -> None:
    store = ModelStore(tmp_path)
    (tmp_path / demo_model_path.name).symlink_to(demo_model_path)
    added = store.add(model_files["q4_k_m"])
    assert added.path.is_symlink() and added.path.resolve() == model_files["q4_k_m"]
    assert added.is_minicpm and added.entry is None and added.name == "tiny-minicpm-q4_k_m"
    assert store.resolve(None) == added
    assert store.resolve("tiny-minicpm-q4_k_m") == added
    assert [m.name for m in store.local_models()] == ["tiny-minicpm-q4_k_m", "gemma3-270m-demo"]
    assert store.add(model_files["q4_k_m"]) == added  # adding twice is harmless


def test_paths_resolve_directly(tmp_path: Path, model_files: dict[str, Path]) -> None:
    model = ModelStore(tmp_path).resolve(str(model_files["f32"]))
    assert model.path == model_files["f32"] and model.entry is None
    with pytest.raises(ModelNotFoundError, match="no such file"):
        ModelStore(tmp_path).resolve(str(tmp_path / "sub" / "absent.gguf"))


def test_catalog_model_not_on_disk_points_to_pull(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="models pull minicpm5-1b"):
        ModelStore(tmp_path).resolve("minicpm5-1b")
    with pytest.raises(ModelNotFoundError, match="models list"):
        ModelStore(tmp_path).resolve("no-such-model")


def test_add_refuses_what_is_not_a_model(tmp_path: Path, model_files: dict[str, Path]) -> None:
    store = ModelStore(tmp_path / "models")
    notes = tmp_path / "notes.gguf"
    notes.write_text("hello")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        store.add(notes)
    with pytest.raises(ModelNotFoundError, match="no such file"):
        store.add(tmp_path / "absent.gguf")
    other = tmp_path / "elsewhere" / "tiny-minicpm-q4_k_m.gguf"
    other.parent.mkdir()
    shutil.copy(model_files["f32"], other)
    store.add(model_files["q4_k_m"])
    with pytest.raises(ModelLoadError, match="a different model named"):
        store.add(other)
    assert not list((tmp_path / "models").glob("*.part"))


def test_models_without_a_published_gguf_cannot_be_pulled(tmp_path: Path) -> None:
    with pytest.raises(ModelDownloadError, match="convert_hf_to_gguf"):
        ModelStore(tmp_path).pull("minicpm-1b")
    with pytest.raises(ModelNotFoundError, match="not in the catalog"):
        ModelStore(tmp_path).pull("gpt-5")


def test_add_again_after_the_file_moved(tmp_path: Path, model_files: dict[str, Path]) -> None:
    moved = tmp_path / "tiny-minicpm-q4_k_m.gguf"
    shutil.copy(model_files["q4_k_m"], moved)
    store = ModelStore(tmp_path / "models")
    store.add(moved)
    elsewhere = tmp_path / "elsewhere" / moved.name
    elsewhere.parent.mkdir()
    moved.rename(elsewhere)  # the link in the models directory now dangles
    assert store.add(elsewhere).path.resolve() == elsewhere
    assert [m.name for m in store.local_models()] == ["tiny-minicpm-q4_k_m"]


def test_add_into_an_unusable_models_directory(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    (tmp_path / "models").write_text("a file where the models directory should be")
    with pytest.raises(ModelError, match="cannot add it to"):
        ModelStore(tmp_path / "models").add(model_files["q4_k_m"])
