"""A resumed download gets the bytes it asked for, and an unpinned model stays the one verified."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.catalog import CATALOG, CatalogEntry
from models.errors import ModelDownloadError, ModelLoadError
from models.fetch import download_file
from models.store import ModelStore
from tests.models.hub_server import HubState, running_hub

FILE_PATH = "/openbmb/Tiny-GGUF/resolve/main/tiny.gguf"
UNPINNED_PATH = "/openbmb/MiniCPM3-4B-GGUF/resolve/main/minicpm3-4b-q4_k_m.gguf"


@pytest.fixture
def hub(
    model_files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    unpinned_minicpm3: CatalogEntry,
) -> Iterator[tuple[str, HubState, bytes]]:
    payload = model_files["q4_k_m"].read_bytes()
    with running_hub() as (base, state):
        state.files[FILE_PATH] = payload
        state.files[UNPINNED_PATH] = payload
        monkeypatch.setenv("HF_ENDPOINT", base)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        yield base, state, payload


@pytest.mark.parametrize("sent_from", [0, 123_456, None], ids=["start", "elsewhere", "unsaid"])
def test_a_range_that_does_not_start_where_the_part_ends_is_refused_and_restarted(
    hub: tuple[str, HubState, bytes], tmp_path: Path, sent_from: int | None
) -> None:
    """The resumed request is answered 206 with the wrong range (or none): the part is dropped
    and the file is fetched again from the start instead of being spliced together."""
    base, state, payload = hub
    state.drop_after[FILE_PATH] = 300_000
    state.wrong_range_once[FILE_PATH] = sent_from
    target = download_file(base + FILE_PATH, tmp_path / "tiny.gguf", expected_size=len(payload))
    assert target.read_bytes() == payload
    assert state.requests == [(FILE_PATH, None), (FILE_PATH, "bytes=300000-"), (FILE_PATH, None)]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tiny.gguf"]


def test_an_unpinned_model_is_recorded_at_its_first_download_and_a_changed_one_refused(
    hub: tuple[str, HubState, bytes], tmp_path: Path, model_files: dict[str, Path]
) -> None:
    _, state, payload = hub
    store = ModelStore(tmp_path)
    first = store.pull("minicpm3-4b")
    record = first.path.with_name(first.path.name + ".verified.json")
    assert record.is_file() and first.path.read_bytes() == payload

    first.path.unlink()  # pulled again later, after "main" moved upstream
    state.files[UNPINNED_PATH] = model_files["f32"].read_bytes()
    with pytest.raises(ModelDownloadError, match="verified at the first download") as refused:
        store.pull("minicpm3-4b")
    assert str(record) in refused.value.message
    assert not first.path.exists()

    record.unlink()  # the user accepts the new file
    assert store.pull("minicpm3-4b").path.read_bytes() == model_files["f32"].read_bytes()


def test_a_verified_model_changed_on_disk_is_refused_at_load(
    hub: tuple[str, HubState, bytes], tmp_path: Path
) -> None:
    store = ModelStore(tmp_path)
    path = store.pull("minicpm3-4b").path
    assert store.resolve("minicpm3-4b").path == path  # unchanged: loads
    with path.open("r+b") as model:  # same size, one byte of tensor data different
        model.seek(-10, 2)
        byte = model.read(1)
        model.seek(-10, 2)
        model.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelLoadError, match="has changed since it was verified"):
        store.resolve("minicpm3-4b")
    with pytest.raises(ModelLoadError, match="has changed since it was verified"):
        store.resolve(None)  # the default MiniCPM on disk is checked the same way


def test_a_catalog_file_from_before_the_records_is_checked_against_the_published_sha256(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    """A file named like the pinned MiniCPM5-1B but holding something else is not loaded."""
    (tmp_path / "MiniCPM5-1B-Q4_K_M.gguf").write_bytes(model_files["q4_k_m"].read_bytes())
    with pytest.raises(ModelLoadError, match="the published one is 81b64d05"):
        ModelStore(tmp_path).resolve("minicpm5-1b")


def test_the_catalog_says_which_entries_are_not_pinned() -> None:
    unpinned = [entry.name for entry in CATALOG if entry.pullable and not entry.pinned]
    assert unpinned == ["minicpm4-8b"]
    import models.catalog

    assert all(name in (models.catalog.__doc__ or "") for name in unpinned)
