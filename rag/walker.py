"""Find the documents under the paths given to an ingest.

Symbolic links are not followed unless configured, and even then never out of the folder given,
so a link loop or a link to ``/`` cannot make an ingest run forever. Anything unreadable or
vanishing during the walk is reported, never raised. Hidden files and folders are ignored.

Only what the walk proves gone may be removed from the index: a folder that could not be listed
(permissions, an I/O error, a drive going away) or a file that could not be examined is recorded in
``WalkResult.unread``, and documents at or below those paths are kept. So is what was indexed from
a folder that now reads as completely empty (``WalkResult.hold_emptied``): that is what the mount
point of a drive not mounted looks like, and a folder emptied on purpose is rarer than one
unmounted; the user confirms such a removal explicitly. A folder that is no longer on the drive
it was read from (``WalkResult.hold_other_drives``) is held the same way: a drive's mount point
left behind with files of its own, removed by the automounter, or holding another drive. A name
that is not valid
UTF-8 cannot be recorded (SQLite stores UTF-8 text), so it is reported once under a readable
spelling (``display_path``) and left out.

A document's identity is its path with every symbolic link resolved (``document_path``): the same
file reached through a linked folder and through its real folder is one document, and a filter or
removal given either spelling finds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rag.loaders import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class FoundFile:
    path: str
    """The document's identity: absolute, symbolic links resolved (``document_path``)."""
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str
    failed: bool = True
    """False for things deliberately not followed (links), True for errors."""


@dataclass
class WalkResult:
    files: list[FoundFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    """The absolute paths walked: documents below them that were not found have gone, unless
    they lie at or below an ``unread`` path."""
    unread: list[str] = field(default_factory=list)
    """Paths seen but not read (a folder that could not be listed, a file that could not be
    examined, a root that does not exist): what is indexed below them is not known to be gone."""

    empty: list[str] = field(default_factory=list)
    """Folders read that hold nothing at all, hidden entries included."""
    devices: dict[str, int] = field(default_factory=dict)
    """The device (``st_dev``) of each folder walked: the drive it lives on."""

    def was_read(self, path: str) -> bool:
        """Whether the walk saw where ``path`` would be: if it was not found there, it is gone."""
        return is_under(path, self.roots) and not is_under(path, self.unread)

    def hold_emptied(self, indexed: Sequence[str]) -> list[str]:
        """Treat each empty folder read that some of ``indexed`` lie below as unread (an
        unmounted drive's mount point reads empty); returns those folders."""
        held = [
            folder for folder in self.empty if any(is_under(path, [folder]) for path in indexed)
        ]
        self.unread += held
        return held

    def drives(self) -> dict[str, int]:
        """The device of each folder root and each mount point below one (a folder on another
        device than its parent): what an unmounted or swapped drive changes."""
        return {
            folder: device
            for folder, device in self.devices.items()
            if folder in self.roots or self.devices.get(os.path.dirname(folder), device) != device
        }

    def hold_other_drives(
        self, recorded: Mapping[str, int], indexed: Mapping[str, tuple[int, int]]
    ) -> None:
        """Treat each ``recorded`` folder (path: device, from :meth:`drives` of an earlier walk)
        that was read but is no longer on its device, or is gone, as unread, while documents of
        ``indexed`` (path: size and mtime) below it are missing; reports it.

        A drive mounted again may get another device number (network and FUSE drives do): if a
        document below the folder is found unchanged, it is the same drive.
        """
        found = {file.path: (file.size, file.mtime_ns) for file in self.files}
        for folder, device in sorted(recorded.items()):
            if not self.was_read(folder) or self.devices.get(folder) == device:
                continue
            below = [path for path in indexed if is_under(path, [folder])]
            missing = [path for path in below if path not in found]
            if missing and not any(found.get(path) == indexed[path] for path in below):
                _unreadable(folder, self, _other_drive(len(missing)))

    def drives_to_record(self, recorded: Mapping[str, int]) -> dict[str, int]:
        """The drive records after this walk: the devices read now, and the recorded ones of
        folders not read (held ones included, so they stay held until the drive is back)."""
        now = {path: device for path, device in self.drives().items() if self.was_read(path)}
        return {**now, **{p: d for p, d in recorded.items() if not self.was_read(p)}}


def held_folders(folders: Sequence[str], kept: Sequence[str]) -> list[Skipped]:
    """The report of each of ``folders`` that keeps documents of ``kept``, with how many."""
    held: list[Skipped] = []
    for folder in folders:
        count = sum(is_under(path, [folder]) for path in kept)
        if count:
            held.append(Skipped(display_path(folder), _emptied(count)))
    return held


def is_under(path: str, folders: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``folders`` or lies below one of them."""
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def display_path(path: str) -> str:
    """``path`` with bytes that are not UTF-8 spelled ``\\xe9``: printable, storable, unique."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _valid_name(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes arrive as lone surrogates (surrogateescape)
        return False
    return True


def document_path(path: str | Path) -> str:
    """The one spelling of a document's path used in records, filters and removals."""
    return os.path.realpath(os.path.expanduser(str(path)))


def walk(paths: list[Path], follow_symlinks: bool = False) -> WalkResult:
    result = WalkResult()
    for given in paths:
        spelled = os.path.abspath(os.path.expanduser(str(given)))
        if not _valid_name(spelled):
            result.skipped.append(Skipped(display_path(spelled), _NOT_UTF8))
            continue
        if not os.path.exists(spelled):
            _unreadable(spelled, result, _MISSING_ROOT)
            continue
        root = document_path(spelled)
        result.roots.append(root)
        if os.path.isdir(root):
            _walk_dir(root, root, follow_symlinks, result, set())
        elif Path(root).suffix.lower() in SUPPORTED_SUFFIXES:
            _add_file(root, result)
        else:
            result.skipped.append(
                Skipped(root, f"unsupported file type {Path(root).suffix or '(none)'}", False)
            )
    unique = {found.path: found for found in result.files}  # a followed link reaches a file twice
    result.files = sorted(unique.values(), key=lambda found: found.path)
    return result


_NOT_UTF8 = "the name is not valid UTF-8; rename it to index it"
_MISSING_ROOT = (
    "no such file or directory (a drive not mounted?); documents indexed from it are kept"
)


def _emptied(documents: int) -> str:
    return f"folder is empty (a drive not mounted?); {_kept(documents)}"


def _other_drive(documents: int) -> str:
    return f"folder could not be read (not the drive it was: unmounted?); {_kept(documents)}"


def _kept(documents: int) -> str:
    kept = f"{documents} documents indexed from it are"
    if documents == 1:
        kept = "1 document indexed from it is"
    return f"{kept} kept: if its files were deleted, run the ingest again with --remove-emptied"


def _unreadable(path: str, result: WalkResult, reason: str) -> None:
    """Report a folder or file that exists but could not be read, and protect what is below it."""
    result.skipped.append(Skipped(display_path(path), reason))
    result.unread.append(document_path(path))


def _walk_dir(
    directory: str, real_root: str, follow: bool, result: WalkResult, seen: set[tuple[int, int]]
) -> None:
    try:
        info = os.stat(directory)
        if (info.st_dev, info.st_ino) in seen:
            result.skipped.append(Skipped(directory, "symbolic link loop; not followed", False))
            return
        seen.add((info.st_dev, info.st_ino))
        result.devices[document_path(directory) if follow else directory] = info.st_dev
        with os.scandir(directory) as entries:
            children = sorted(entries, key=lambda entry: entry.name)
        if not children:
            result.empty.append(document_path(directory))
    except FileNotFoundError:
        result.skipped.append(Skipped(directory, "folder vanished during the walk"))
        return
    except OSError as error:
        reason = f"folder could not be read ({_why(error)}); documents indexed from it are kept"
        _unreadable(directory, result, reason)
        return
    for entry in children:
        if entry.name.startswith("."):
            continue
        try:
            if not _valid_name(entry.name):
                if entry.is_dir() or Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES:
                    result.skipped.append(Skipped(display_path(entry.path), _NOT_UTF8))
                continue
            if entry.is_symlink():
                if not _may_follow(entry.path, real_root, follow, result):
                    continue
            if entry.is_dir():
                _walk_dir(entry.path, real_root, follow, result, seen)
            elif Path(entry.name).suffix.lower() in SUPPORTED_SUFFIXES:
                _add_file(entry.path, result)
        except OSError as error:
            _unreadable(entry.path, result, f"cannot read: {_why(error)}")


def _why(error: OSError) -> str:
    return error.strerror or type(error).__name__


def _may_follow(path: str, real_root: str, follow: bool, result: WalkResult) -> bool:
    if not (os.path.isdir(path) or Path(path).suffix.lower() in SUPPORTED_SUFFIXES):
        return False
    if not follow:
        result.skipped.append(
            Skipped(path, "symbolic link; not followed (library.follow_symlinks)", False)
        )
        return False
    target = os.path.realpath(path)
    if target != real_root and not target.startswith(real_root.rstrip("/") + "/"):
        result.skipped.append(
            Skipped(path, "symbolic link leaving the folder; not followed", False)
        )
        return False
    return True


def _add_file(path: str, result: WalkResult) -> None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        result.skipped.append(Skipped(path, "file vanished during the walk"))
        return
    except OSError as error:
        _unreadable(path, result, f"cannot read: {_why(error)}")
        return
    if not os.access(path, os.R_OK):
        _unreadable(path, result, "permission denied")
        return
    result.files.append(FoundFile(document_path(path), info.st_size, info.st_mtime_ns))
