"""GGUFs other apps already downloaded: found where those apps keep them, read, never copied.

Users of LM Studio, Ollama, GPT4All, llama.cpp or the Hugging Face tools have gigabytes of models
on disk; offering them saves a download. Each app's folder is walked for ``*.gguf`` (Ollama's
blobs have no names, so its manifests say which blob is a model and what it is called). Every
file's header is read for architecture, size and quantization; one that cannot be read is listed
with the reason instead of stopping the scan. Directory symlinks are followed once (a loop ends
there), and a folder that cannot be read is skipped.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from models.errors import ModelLoadError
from models.gguf_info import format_count, read_gguf_info

_OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
"""A split GGUF's part; llama.cpp is given the first part and reads the rest itself."""
_MAX_DEPTH = 8
"""Deep enough for every app's layout (HF: models--x/snapshots/rev/sub/file.gguf)."""
_NOT_CHAT_MODELS = frozenset({"clip"})
"""Architectures of GGUFs that sit beside chat models but are not one (vision projectors)."""


@dataclass(frozen=True)
class FoundModel:
    """A GGUF found in another app's folder."""

    path: Path
    """The file itself (for Ollama, its blob)."""
    name: str
    """What to call it here: the file's stem, or Ollama's ``model:tag``."""
    source: str
    """The app whose folder holds it, e.g. "LM Studio"."""
    size_bytes: int
    architecture: str | None = None
    quantization: str | None = None
    parameters: int | None = None
    problem: str | None = None
    """Why its header could not be read (it is listed, and cannot be added)."""

    @property
    def is_minicpm(self) -> bool:
        return "minicpm" in f"{self.architecture or ''} {self.name} {self.path.name}".lower()

    @property
    def link_name(self) -> str | None:
        """The name to add it under: Ollama's blobs are named by hash, so by the model's name;
        None keeps the file's own name."""
        return self.name if self.source == "Ollama" else None

    @property
    def parameters_label(self) -> str:
        return format_count(self.parameters) if self.parameters else ""


def search_roots(home: Path, env: Mapping[str, str]) -> list[tuple[str, Path]]:
    """Where each app keeps its models on this platform, as (app, folder); missing ones too."""
    cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
    hf_home = Path(env["HF_HOME"]) if env.get("HF_HOME") else cache / "huggingface"
    local_app_data = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
    data_home = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
    roots = [
        ("Hugging Face cache", Path(env.get("HF_HUB_CACHE") or hf_home / "hub")),
        ("LM Studio", home / ".lmstudio" / "models"),
        ("LM Studio", cache / "lm-studio" / "models"),
        ("llama.cpp cache", Path(env["LLAMA_CACHE"]) if env.get("LLAMA_CACHE") else None),
    ]
    if sys.platform == "darwin":
        roots += [
            ("GPT4All", home / "Library" / "Application Support" / "nomic.ai" / "GPT4All"),
            ("llama.cpp cache", home / "Library" / "Caches" / "llama.cpp"),
        ]
    elif sys.platform == "win32":
        roots += [
            ("GPT4All", local_app_data / "nomic.ai" / "GPT4All"),
            ("llama.cpp cache", local_app_data / "llama.cpp"),
        ]
    else:
        roots += [
            ("GPT4All", data_home / "nomic.ai" / "GPT4All"),
            ("llama.cpp cache", cache / "llama.cpp"),
        ]
    return [(app, root) for app, root in roots if root is not None]


def ollama_roots(home: Path, env: Mapping[str, str]) -> list[Path]:
    """Ollama's model stores: ``OLLAMA_MODELS``, else the user's, and on Linux the system
    service's (its installer runs it as the ``ollama`` user)."""
    if env.get("OLLAMA_MODELS"):
        return [Path(env["OLLAMA_MODELS"])]
    service = [Path("/usr/share/ollama/.ollama/models")] if sys.platform.startswith("linux") else []
    return [home / ".ollama" / "models", *service]


def scan(home: Path | None = None, env: Mapping[str, str] | None = None) -> list[FoundModel]:
    """Every GGUF the known apps hold, MiniCPM first, then by name; unreadable ones last.

    A file reached twice (two snapshots of one blob, a symlinked folder) is listed once.
    """
    home = Path.home() if home is None else home
    env = os.environ if env is None else env
    found: dict[Path, FoundModel] = {}
    candidates: list[tuple[str, Path, str]] = [
        (app, path, _shard_free_stem(path))
        for app, root in search_roots(home, env)
        for path in _gguf_files(root)
    ]
    candidates += [
        ("Ollama", path, name)
        for root in ollama_roots(home, env)
        for path, name in _ollama_models(root)
    ]
    for app, path, name in candidates:
        key = _real(path)
        if key not in found:
            found[key] = _describe(path, name, app)
    usable = [model for model in found.values() if model.architecture not in _NOT_CHAT_MODELS]
    return sorted(
        usable, key=lambda m: (m.problem is not None, not m.is_minicpm, m.name.lower(), m.source)
    )


def _describe(path: Path, name: str, source: str) -> FoundModel:
    try:
        info = read_gguf_info(path)
    except ModelLoadError as error:
        size = path.stat().st_size if path.is_file() else 0
        return FoundModel(path, name, source, size, problem=str(error))
    return FoundModel(
        path, name, source, info.size_bytes, info.architecture, info.file_type, info.parameters
    )


def _gguf_files(root: Path) -> Iterator[Path]:
    """``*.gguf`` files under ``root``: symlinked folders followed once, first shards only."""
    seen: set[tuple[int, int]] = set()
    pending = [(root, 0)]
    while pending:
        folder, depth = pending.pop()
        try:
            identity = folder.stat()
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError:  # missing, unreadable, or a loop the kernel refused (ELOOP)
            continue
        if (identity.st_dev, identity.st_ino) in seen:
            continue
        seen.add((identity.st_dev, identity.st_ino))
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir():
                    if depth < _MAX_DEPTH and not entry.name.startswith("."):
                        pending.append((path, depth + 1))
                elif entry.name.lower().endswith(".gguf") and entry.is_file():
                    shard = _SHARD.search(entry.name)
                    if shard is None or int(shard.group(1)) == 1:
                        yield path
            except OSError:
                continue


def _ollama_models(root: Path) -> Iterator[tuple[Path, str]]:
    """(blob, ``model:tag``) for every manifest naming a model layer whose blob is there.

    Manifests live at ``manifests/<registry>/<namespace>/<model>/<tag>``; the default registry's
    ``library`` namespace is left out of the name, as ``ollama list`` does.
    """
    manifests = root / "manifests"
    for manifest in sorted(manifests.glob("*/*/*/*")):
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
            digest = next(
                layer["digest"] for layer in layers if layer["mediaType"] == _OLLAMA_MODEL_LAYER
            )
            blob = root / "blobs" / str(digest).replace(":", "-", 1)
        except (
            OSError,
            UnicodeDecodeError,
            ValueError,
            AttributeError,
            KeyError,
            TypeError,
            StopIteration,
        ):
            continue  # not a manifest of a model (or a broken one): nothing to offer
        registry, namespace, model, tag = manifest.relative_to(manifests).parts
        prefix = (
            ""
            if (registry, namespace) == ("registry.ollama.ai", "library")
            else (
                f"{namespace}/" if registry == "registry.ollama.ai" else f"{registry}/{namespace}/"
            )
        )
        if blob.is_file():
            yield blob, f"{prefix}{model}:{tag}"


def _shard_free_stem(path: Path) -> str:
    """``model-00001-of-00003.gguf`` -> ``model``; any other file: its stem."""
    return _SHARD.sub("", path.name) if _SHARD.search(path.name) else path.stem


def _real(path: Path) -> Path:
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        return path
