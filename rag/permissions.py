"""User-only folders and files: the index, the conversations and the settings are private data.

Folders are made ``0700`` and files ``0600`` whatever the umask, and those an earlier version left
with the umask's ``755``/``644`` are tightened when they are opened. A folder that is ``0700``
already keeps other users out of everything below it; files are tightened as well so that a copy
or a move elsewhere does not make them readable. Symbolic links are never followed (``chmod``
would change the file they point to, which may be the user's own GGUF or document).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) if needed and make it user-only."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(path, PRIVATE_DIR)
    return path


def private_database(path: Path) -> Path:
    """Make the SQLite database at ``path`` user-only before it is opened.

    A missing file is created empty (SQLite treats it as a new database) with ``0600``; SQLite
    gives its ``-wal``, ``-shm`` and ``-journal`` files the database's own mode, and any left by
    an earlier run are tightened here.
    """
    private_dir(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE))
    for candidate in (path, *(path.with_name(path.name + end) for end in _SQLITE_SIDE_FILES)):
        if candidate.exists():
            _tighten(candidate, PRIVATE_FILE)
    return path


def private_tree(root: Path) -> Path:
    """Make ``root`` and every folder and file below it user-only (a store we do not write
    ourselves, such as Chroma's, whose files are created with the process umask)."""
    private_dir(root)
    for folder, folders, files in os.walk(root):
        for name in folders:
            _tighten(Path(folder) / name, PRIVATE_DIR)
        for name in files:
            _tighten(Path(folder) / name, PRIVATE_FILE)
    return root


def _tighten(path: Path, mode: int) -> None:
    """``chmod path mode`` when group or others have any access; links and other users' files
    (which cannot be changed) are left alone, the latter with a warning."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or not stat.S_IMODE(info.st_mode) & 0o077:
            return
        os.chmod(path, mode)
    except FileNotFoundError:
        return
    except PermissionError as error:
        log.warning("cannot make %s private (%s)", path, error.strerror or error)
