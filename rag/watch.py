"""Keep a collection's remembered folders indexed while files are added, changed, moved, deleted.

File events (watchdog: inotify, FSEvents, ReadDirectoryChangesW) only say *that* something
changed; what changed is found by the ordinary incremental ingest of the folders
(:meth:`rag.library.Library.ingest`), which compares every file with the manifest and writes in
its crash-safe order. So a watched update is exactly a manual one: unchanged files cost a
``stat``, a moved file is re-pointed, not re-embedded, and a ``kill -9`` resumes without
duplicates. Events are debounced (an ingest starts once the folders have been quiet for
``debounce_s``), so a file being copied is indexed once, complete. A rescan every ``rescan_s``
catches what events miss: a network or removable drive, a folder that could not be watched
(inotify's watch limit), a change made while the library was busy.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from rag.errors import LibraryBusyError
from rag.library import Library
from rag.loaders import SUPPORTED_SUFFIXES
from rag.types import IngestProgress, IngestReport
from rag.walker import is_under

_log = logging.getLogger(__name__)

_CHANGES = frozenset(
    {
        EVENT_TYPE_CREATED,
        EVENT_TYPE_MODIFIED,
        EVENT_TYPE_MOVED,
        EVENT_TYPE_DELETED,
        EVENT_TYPE_CLOSED,
    }
)
"""Events that can change what is indexed; opening or reading a file (the ingest's own reads
among them) is not one."""


class _Changes(FileSystemEventHandler):
    """Sets ``changed`` for events on documents or folders below the watched roots."""

    def __init__(self, changed: threading.Event) -> None:
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(_matters(os.fsdecode(path), event.is_directory) for path in paths if path):
            self.changed.set()


def _matters(path: str, is_directory: bool) -> bool:
    """Whether a change at ``path`` can change the index: not hidden (the walker skips hidden
    names), and a folder or a file of a type that is indexed."""
    if any(part.startswith(".") for part in Path(path).parts):
        return False
    return is_directory or Path(path).suffix.lower() in SUPPORTED_SUFFIXES


class FolderWatcher:
    """Keeps the remembered folders of ``collection`` indexed until :meth:`stop`.

    ``on_report`` gets each update's report (the first is the catch-up ingest at start);
    ``progress`` is passed to the ingests. ``on_busy`` gets the reason when another process
    holds the library's write lock (once until an update succeeds again; the update is retried
    every ``debounce_s``). ``writing``, when given, is held during each update: the other
    writers of this process take it too, so they wait for an update instead of finding the
    library busy, and an update waits for them (retried like a busy library, silently).
    ``events=False`` relies on the rescan alone.
    """

    def __init__(
        self,
        library: Library,
        collection: str = "default",
        *,
        debounce_s: float = 1.0,
        rescan_s: float = 300.0,
        on_report: Callable[[IngestReport], None] | None = None,
        progress: Callable[[IngestProgress], None] | None = None,
        on_busy: Callable[[str], None] | None = None,
        writing: threading.Lock | None = None,
        events: bool = True,
    ) -> None:
        self.library, self.collection = library, collection
        self.debounce_s, self.rescan_s = debounce_s, rescan_s
        self.on_report, self.progress, self.on_busy = on_report, progress, on_busy
        self._writing = writing
        self._events = events
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._busy = False
        self._watches: dict[str, ObservedWatch] = {}

    def stop(self) -> None:
        """Make :meth:`run` return; an update in progress stops after its current file (it is
        finished at the next start, as after Ctrl-C)."""
        self._stopping.set()
        self._changed.set()

    def rescan(self) -> None:
        """Update the folders soon, as after a file event: a folder just remembered (an ingest
        of this process added it) is then watched too."""
        self._changed.set()

    def run(self) -> None:
        """Bring the folders up to date, then again after every change and every rescan."""
        observer = self._observer()
        try:
            while not self._stopping.is_set():
                self._update(observer)
                self._changed.wait(self.rescan_s)
                self._quiet()
        finally:
            if observer is not None:
                observer.stop()
                observer.join()

    def _observer(self) -> BaseObserver | None:
        """A started observer of file events, or None: none asked for, or none to be had (the
        system's inotify instances used up by other programs), when the rescans alone keep the
        folders current."""
        if not self._events:
            return None
        try:
            observer = Observer()
        except OSError as error:
            _log.warning(
                "cannot watch for file changes (%s); the folders are rescanned every %gs instead",
                error.strerror or error,
                self.rescan_s,
            )
            return None
        observer.start()
        return observer

    def _quiet(self) -> None:
        """Wait until no change came for ``debounce_s`` (a copy in progress is indexed once)."""
        while self._changed.is_set() and not self._stopping.is_set():
            self._changed.clear()
            self._stopping.wait(self.debounce_s)

    def _update(self, observer: BaseObserver | None) -> None:
        folders = [folder.path for folder in self.library.folders(self.collection)]
        if observer is not None:
            self._watch(observer, folders)
        if not folders or self._stopping.is_set():
            return
        if self._writing is not None and not self._writing.acquire(blocking=False):
            self._changed.set()  # another writer of this process: try again after it
            return
        try:
            report = self.library.ingest(
                [Path(folder) for folder in folders],
                self.collection,
                progress=self.progress,
                cancel=self._stopping,
            )
        except (
            LibraryBusyError
        ) as error:  # another ingest is writing: try again once it may be done
            _log.info("library busy; the watched folders are updated after %gs", self.debounce_s)
            self._changed.set()
            if not self._busy and self.on_busy is not None:
                self.on_busy(str(error))
            self._busy = True
            return
        finally:
            if self._writing is not None:
                self._writing.release()
        self._busy = False
        if self.on_report is not None and not self._stopping.is_set():
            self.on_report(report)

    def _watch(self, observer: BaseObserver, folders: list[str]) -> None:
        """Watch the folders remembered now (an ingest elsewhere may add one, a removal drop
        one); one that cannot be watched is left to the rescan."""
        for folder in set(self._watches) - set(folders):
            observer.unschedule(self._watches.pop(folder))
        for folder in folders:
            if folder in self._watches or is_under(folder, list(self._watches)):
                continue
            try:
                self._watches[folder] = observer.schedule(
                    _Changes(self._changed), folder, recursive=True
                )
            except OSError as error:  # missing (unmounted), unreadable, inotify limit reached
                _log.warning(
                    "cannot watch %s (%s); it is rescanned every %gs instead",
                    folder,
                    error.strerror or error,
                    self.rescan_s,
                )
