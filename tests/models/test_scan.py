"""``models scan``: the folder layouts of LM Studio, Ollama, GPT4All, llama.cpp and the Hugging
Face cache, built in a temporary home with real tiny GGUFs (one MiniCPM, one Llama)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.locations import Locations
from models.errors import ModelNotFoundError
from models.scan import scan
from models.store import ModelStore
from tests.fixtures_models import build_minicpm_gguf

OLLAMA_MODEL = "application/vnd.ollama.image.model"


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ggufs")
    return {
        "minicpm": build_minicpm_gguf(folder / "minicpm.gguf"),
        "llama": build_minicpm_gguf(folder / "llama.gguf", architecture="llama", seed=3),
    }


def _copy(source: Path, destination: Path) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return destination


def _ollama_manifest(root: Path, model: str, tag: str, blob: Path | None, text: str = "") -> None:
    manifest = root / "manifests" / "registry.ollama.ai" / "library" / model / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    if blob is not None:
        digest = hashlib.sha256(blob.read_bytes()).hexdigest()
        _copy(blob, root / "blobs" / f"sha256-{digest}")
        layers = [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:00"},
            {"mediaType": OLLAMA_MODEL, "digest": f"sha256:{digest}", "size": 1},
        ]
        text = json.dumps({"schemaVersion": 2, "layers": layers})
    manifest.write_text(text)


@pytest.fixture
def home(tmp_path: Path, ggufs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory with every app's layout, a broken manifest, a truncated GGUF, a loop."""
    home = tmp_path / "user"
    repo = home / ".cache" / "huggingface" / "hub" / "models--openbmb--MiniCPM-tiny-gguf"
    blob = _copy(ggufs["minicpm"], repo / "blobs" / "a1b2c3")
    for revision in ("1111", "2222"):  # two snapshots of one blob: one model
        snapshot = repo / "snapshots" / revision / "MiniCPM-tiny-Q8_0.gguf"
        snapshot.parent.mkdir(parents=True)
        snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    _copy(ggufs["llama"], home / ".lmstudio" / "models" / "community" / "Tiny" / "tiny-llama.gguf")
    gpt4all = home / ".local" / "share" / "nomic.ai" / "GPT4All"
    _copy(ggufs["llama"], gpt4all / "broken.gguf").write_bytes(ggufs["llama"].read_bytes()[:200])
    ollama = home / ".ollama" / "models"
    _ollama_manifest(ollama, "tinyllama", "latest", ggufs["llama"])
    _ollama_manifest(ollama, "garbled", "latest", None, text="{not json")
    _ollama_manifest(ollama, "gone", "latest", None, text=json.dumps({"layers": "nope"}))
    cache = tmp_path / "llama-cache"
    _copy(ggufs["llama"], cache / "split-model-00001-of-00002.gguf")
    _copy(ggufs["llama"], cache / "split-model-00002-of-00002.gguf")
    (cache / "loop").symlink_to(cache)
    (cache / "self").symlink_to(cache / "self")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LLAMA_CACHE", str(cache))
    for name in ("HF_HOME", "HF_HUB_CACHE", "XDG_CACHE_HOME", "XDG_DATA_HOME", "OLLAMA_MODELS"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_scan_finds_every_apps_models_minicpm_first(home: Path) -> None:
    found = scan()
    rows = [(m.name, m.source, m.architecture, m.quantization) for m in found]
    assert rows == [
        ("MiniCPM-tiny-Q8_0", "Hugging Face cache", "minicpm", "F32"),
        ("split-model", "llama.cpp cache", "llama", "F32"),
        ("tiny-llama", "LM Studio", "llama", "F32"),
        ("tinyllama:latest", "Ollama", "llama", "F32"),
        ("broken", "GPT4All", None, None),
    ]
    assert found[0].is_minicpm and not any(model.is_minicpm for model in found[1:])
    assert found[0].parameters and found[0].size_bytes == found[0].path.stat().st_size
    assert "truncated GGUF" in str(found[-1].problem)
    assert found[3].path.parent.name == "blobs"


def test_env_overrides_move_the_folders(home: Path, tmp_path: Path, ggufs: dict[str, Path]) -> None:
    hub = tmp_path / "elsewhere" / "hub"
    _copy(ggufs["minicpm"], hub / "models--x--y" / "snapshots" / "r" / "moved-minicpm.gguf")
    ollama = tmp_path / "ollama-store"
    _ollama_manifest(ollama, "minicpm-v", "8b", ggufs["minicpm"])
    env = {"HF_HUB_CACHE": str(hub), "OLLAMA_MODELS": str(ollama)}
    names = [model.name for model in scan(home, env)]
    assert names[:2] == ["minicpm-v:8b", "moved-minicpm"] and "MiniCPM-tiny-Q8_0" not in names


def test_add_links_without_copying_and_rm_keeps_the_file(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["models", "scan", "--add", "minicpm", "4"]) == 0
    out = capsys.readouterr().out
    assert "Added MiniCPM-tiny-Q8_0" in out and "Added tinyllama-latest" in out
    store = ModelStore(Locations.default().models_dir)
    linked = {model.name: model.path for model in store.references()}
    assert set(linked) == {"MiniCPM-tiny-Q8_0", "tinyllama-latest"}
    assert all(path.is_symlink() for path in linked.values())
    assert store.resolve("MiniCPM-tiny-Q8_0").is_minicpm
    assert store.resolve(None).name == "MiniCPM-tiny-Q8_0"  # a MiniCPM on disk is the default

    assert main(["models", "scan", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [row["added_as"] for row in listed[:4]] == [
        "MiniCPM-tiny-Q8_0",
        None,
        None,
        "tinyllama-latest",
    ]

    blob = linked["tinyllama-latest"].resolve()
    assert main(["models", "rm", "tinyllama-latest"]) == 0
    assert blob.is_file() and "its file stays at" in capsys.readouterr().out
    assert [model.name for model in store.references()] == ["MiniCPM-tiny-Q8_0"]


def test_a_moved_file_is_named_with_what_to_do(
    home: Path, tmp_path: Path, ggufs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    store = ModelStore(tmp_path / "models")
    own = _copy(ggufs["llama"], tmp_path / "downloads" / "mine.gguf")
    store.add(own)
    own.rename(own.with_name("renamed.gguf"))
    assert store.broken_references() == [("mine", own)]
    with pytest.raises(ModelNotFoundError, match="no longer there.*models add.*models rm mine"):
        store.resolve("mine")
    assert store.remove_reference("mine") == own
    assert store.broken_references() == [] and own.with_name("renamed.gguf").is_file()
    with pytest.raises(ModelNotFoundError, match="no linked model called 'mine'"):
        store.remove_reference("mine")


def test_bad_choices_are_one_clear_line(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "scan", "--add", "5"]) == 1
    assert "model 5 cannot be added" in capsys.readouterr().err
    assert main(["models", "scan", "--add", "99"]) == 1
    assert "give numbers from 1 to 5" in capsys.readouterr().err


def test_file_names_are_shown_as_text(
    home: Path, ggufs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _copy(ggufs["llama"], home / ".lmstudio" / "models" / "x" / "evil\x1b[2J[red]x[/red].gguf")
    assert main(["models", "scan"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "[red]x[/red]" in out
