"""Watch the data folder recursively (watchdog) and report changed paths, relative and noise-free."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileAttribEvent, FileClosedEvent,
                             FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileSystemEvent,
                             FileSystemEventHandler)
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from rclone_jupyter.model.filters import is_noise

log = logging.getLogger(__name__)

# Events that say nothing about content: reading a file, or a directory's own mtime changing because
# something inside it changed (that something gets its own event).
_IGNORED = {"opened", "closed_no_write"}
# The events asked for: the kernel does not even send the others (every upload opens and reads each file:
# that was two events per file, each costing CPU here).
_WANTED = [FileCreatedEvent, DirCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileDeletedEvent,
           DirDeletedEvent, FileMovedEvent, DirMovedEvent]


def relative(root: Path, path: str | bytes) -> str | None:
    """Given an absolute event path, return it relative to `root` with '/' separators (None for root itself)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    rel = os.path.relpath(path, root)
    if rel == "." or rel.startswith(".." + os.sep) or rel == "..":
        return None
    return rel.replace(os.sep, "/")


# Events after which the path is as it will stay: a file closed after writing, a rename into place (Jupyter's
# atomic save), a deletion. Its sync need not wait for a quiet period (model/debounce.py).
_FINISHED = {"closed", "moved", "deleted"}


class ChangeHandler(FileSystemEventHandler):
    """Turns watchdog events into sink(path relative to root, finished)."""

    def __init__(self, root: Path, sink: Callable[[str, bool], None]):
        self.root = root
        self.sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _IGNORED:
            return
        if event.is_directory and event.event_type == "modified":
            return
        paths = [event.src_path]
        if event.event_type == "moved":
            paths.append(event.dest_path)
        finished = event.event_type in _FINISHED
        if event.event_type == "created":
            # A new folder or link is whole at once; a new file is being written until it is closed.
            finished = event.is_directory or os.path.islink(os.fsdecode(event.src_path))
        for path in paths:
            rel = relative(self.root, path)
            if rel is not None and not is_noise(rel):
                self.sink(rel, finished)


_MAX_WATCHES = Path("/proc/sys/fs/inotify/max_user_watches")


def system_watch_limit() -> int | None:
    """The kernel's inotify watch limit for this user (one watch per folder), or None if unknown."""
    try:
        return int(_MAX_WATCHES.read_text().strip())
    except (OSError, ValueError):
        return None


def more_folders_than(root: Path, limit: int) -> bool:
    """True if `root` holds more than `limit` folders (itself included); stops counting once it knows.

    Every folder counts, noise included: inotify watches them all.
    """
    count = 0
    for _dirpath, _dirnames, _filenames in os.walk(root):
        count += 1
        if count > limit:
            return True
    return False


class Watcher:
    """Owns the watchdog observer. Falls back to polling (with a WARNING) when inotify runs out of watches.

    `watch_limit` (default: the kernel's fs.inotify.max_user_watches) is checked before inotify starts: a tree
    with more folders than that goes straight to polling instead of taking every watch and then failing.
    Setting it low (RCLONE_JUPYTER_WATCH_LIMIT) also forces the fallback, e.g. to test it.
    """

    def __init__(self, root: Path, sink: Callable[[str, bool], None], on_fallback: Callable[[], None] | None = None,
                 poll_interval: float = 5.0, watch_limit: int | None = None):
        self.root = root
        self.sink = sink
        self.on_fallback = on_fallback
        self.poll_interval = poll_interval
        self.watch_limit = watch_limit
        self._observer = None
        self.polling = False

    def start(self) -> None:
        handler = ChangeHandler(self.root, self.sink)
        observer = Observer()
        limit = self.watch_limit if self.watch_limit is not None else system_watch_limit()
        try:
            if limit is not None and more_folders_than(self.root, limit):
                raise OSError(errno.ENOSPC, f"more than {limit} folders to watch")
            observer.schedule(handler, str(self.root), recursive=True, event_filter=_WANTED)
            observer.start()
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            log.warning(
                "WARNING: the data folder has more folders than the inotify watch limit allows (%s, "
                "fs.inotify.max_user_watches); falling back to scanning it every %g s. Changes still sync, "
                "later and at more CPU cost. Raise the limit on the host to get instant syncs.",
                exc.strerror or exc, self.poll_interval,
            )
            try:
                observer.stop()
            except Exception:  # noqa: BLE001 - a half-started observer may fail to stop; we replace it anyway
                pass
            observer = PollingObserver(timeout=self.poll_interval)
            observer.schedule(handler, str(self.root), recursive=True, event_filter=_WANTED)
            observer.start()
            self.polling = True
            if self.on_fallback is not None:
                self.on_fallback()
        self._observer = observer
        log.info("watching %s for changes%s", self.root, " (polling)" if self.polling else "")

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
