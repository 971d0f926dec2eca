"""One writer at a time per index directory, across processes.

An advisory ``flock`` on a file in the index directory: the kernel releases it when the holder
exits, even by ``kill -9``, so a crash never leaves the library locked. A second writer fails at
once with :class:`LibraryBusyError` instead of waiting behind a long ingest.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from rag.errors import LibraryBusyError


class WriteLock:
    """``with WriteLock(index_dir):`` around anything that changes the library."""

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / "write.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise LibraryBusyError(
                f"library is busy: another process (pid {holder}) is changing {self.path.parent}; "
                "try again when it has finished"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(self, *_: object) -> None:
        self.release()
