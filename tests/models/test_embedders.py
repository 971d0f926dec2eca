"""Embedding models pulled from the local stand-in hub over loopback (real HTTP, real files of a
real sentence-transformers model), then used: loaded, and a collection switched to one through
the real command line."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from assistant.cli import main
from models.embedders import EmbedderEntry, find_embedder, local_path, pull_embedder
from models.errors import ModelDownloadError
from tests.fixtures_embedders import model_files, tiny_embedder
from tests.models.hub_server import HubState, running_hub


def _catalogued(name: str) -> EmbedderEntry:
    entry = find_embedder(name)
    assert entry is not None
    return entry


E5 = _catalogued("multilingual-e5-small")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_embedder(tmp_path_factory.mktemp("embedders") / "tiny")


@pytest.fixture
def entry(tiny: Path) -> EmbedderEntry:
    """A catalog entry for the tiny model, as the hub would list it."""
    return EmbedderEntry(
        name="tiny-embedder",
        model_id="tests/tiny-embedder",
        title="tiny",
        languages="none",
        dimensions=32,
        max_tokens=256,
        size_bytes=sum((tiny / f).stat().st_size for f in model_files(tiny)),
        files=model_files(tiny),
    )


def _serve(state: HubState, repo: str, files: dict[str, bytes]) -> None:
    for name, body in files.items():
        state.files[f"/{repo}/resolve/main/{name}"] = body


@pytest.fixture
def hub(tiny: Path, entry: EmbedderEntry, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubState]:
    with running_hub() as (base, state):
        _serve(state, entry.model_id, {f: (tiny / f).read_bytes() for f in entry.files})
        monkeypatch.setenv("HF_ENDPOINT", base)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        yield state


def test_pull_gives_a_folder_that_embeds_like_the_original(
    hub: HubState, entry: EmbedderEntry, tiny: Path, tmp_path: Path
) -> None:
    seen: list[int] = []
    folder = pull_embedder(entry, tmp_path, progress=lambda done, _: seen.append(done))
    assert folder == local_path(tmp_path, entry) == tmp_path / "embedders" / "tiny-embedder"
    assert model_files(folder) == entry.files
    assert seen[-1] == entry.size_bytes and seen == sorted(seen)
    texts = ["trace trees", "nested loops"]
    original = SentenceTransformer(str(tiny), device="cpu").encode(texts)
    pulled = SentenceTransformer(str(folder), device="cpu").encode(texts)
    assert np.allclose(original, pulled)
    requests = len(hub.requests)
    assert pull_embedder(entry, tmp_path) == folder
    assert len(hub.requests) == requests  # on disk: nothing fetched again


def test_a_dropped_connection_resumes_with_a_range_request(
    hub: HubState, entry: EmbedderEntry, tmp_path: Path
) -> None:
    weights = f"/{entry.model_id}/resolve/main/model.safetensors"
    hub.drop_after[weights] = 100_000
    pull_embedder(entry, tmp_path)
    assert [r for r in hub.requests if r[0] == weights] == [
        (weights, None),
        (weights, "bytes=100000-"),
    ]


def test_a_failed_pull_leaves_no_model_and_the_next_one_fetches_only_what_is_missing(
    hub: HubState, entry: EmbedderEntry, tmp_path: Path
) -> None:
    last = f"/{entry.model_id}/resolve/main/{entry.files[-1]}"
    hub.fail_once[last] = 404
    with pytest.raises(ModelDownloadError, match="the file is not there"):
        pull_embedder(entry, tmp_path)
    assert local_path(tmp_path, entry) is None
    fetched = {path for path, _ in hub.requests}
    hub.requests.clear()

    pull_embedder(entry, tmp_path)

    assert [path for path, _ in hub.requests] == [last]
    assert last in fetched


def test_an_error_page_instead_of_json_is_refused(
    hub: HubState, entry: EmbedderEntry, tmp_path: Path
) -> None:
    hub.files[f"/{entry.model_id}/resolve/main/modules.json"] = b"<html>Bad gateway</html>"
    with pytest.raises(ModelDownloadError, match="modules.json is not valid JSON"):
        pull_embedder(entry, tmp_path)
    assert local_path(tmp_path, entry) is None
    assert not (tmp_path / "embedders" / "tiny-embedder.partial" / "modules.json").exists()


def test_hf_offline_is_respected(entry: EmbedderEntry, tmp_path: Path) -> None:
    with pytest.raises(ModelDownloadError, match="HF_HUB_OFFLINE is set"):
        pull_embedder(entry, tmp_path)


def test_pull_then_switch_a_collection_through_the_command_line(
    tiny: Path,
    tmp_path: Path,
    pdf_corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`models pull multilingual-e5-small`, served by the stand-in hub (the tiny model's files
    under e5's names), then `docs embedder multilingual-e5-small` on a real ingested PDF."""
    files = {f: (tiny / f).read_bytes() for f in model_files(tiny)}
    files["special_tokens_map.json"] = json.dumps({}).encode()
    files["sentencepiece.bpe.model"] = b"unused by the fast tokenizer"
    assert set(E5.files) <= set(files)
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(pdf_corpus / "clean" / "tracemonkey.pdf", docs)
    assert main(["ingest", str(docs), "--json"]) == 0
    with running_hub() as (base, state):
        _serve(state, E5.model_id, files)
        monkeypatch.setenv("HF_ENDPOINT", base)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        assert main(["models", "pull", "multilingual-e5-small"]) == 0
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["embedders"]
    assert [(e["name"], e["on_disk"]) for e in listed] == [
        ("all-MiniLM-L6-v2", True),
        ("multilingual-e5-small", True),
        ("bge-m3", False),
    ]

    assert main(["docs", "embedder", "multilingual-e5-small"]) == 0
    assert "default: now multilingual-e5-small" in capsys.readouterr().out
    assert main(["docs", "embedder"]) == 0
    assert capsys.readouterr().out.strip() == "default: multilingual-e5-small"
    assert main(["search", "trace tree", "--json", "-k", "2"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and all(hit["file"].endswith("tracemonkey.pdf") for hit in hits)


def test_switching_to_a_model_not_downloaded_says_how_to_get_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["docs", "embedder", "bge-m3"]) == 1
    assert capsys.readouterr().err.strip() == (
        "Model not found: bge-m3 is not downloaded; run `minicpm-assistant models pull bge-m3`"
    )
