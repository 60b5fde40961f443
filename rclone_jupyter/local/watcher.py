"""Watch the data folder recursively (watchdog) and report changed paths, relative and noise-free."""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.events import (DirCreatedEvent, DirDeletedEvent, DirMovedEvent, FileAttribEvent, FileClosedEvent,
                             FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileSystemEvent,
                             FileSystemEventHandler, generate_sub_created_events, generate_sub_moved_events)
from watchdog.observers import Observer
from watchdog.observers.api import DEFAULT_OBSERVER_TIMEOUT, BaseObserver
from watchdog.observers.polling import PollingEmitter

try:  # Linux: watch the watch budget (below); elsewhere watchdog's default observer, as before
    from watchdog.observers.inotify import InotifyEmitter, InotifyObserver
    from watchdog.observers.inotify_c import DEFAULT_EVENT_BUFFER_SIZE, InotifyConstants, InotifyEvent, InotifyFD
    from watchdog.observers.inotify_move_event_grouper import PathedInotifyEvent

    # A file's own content events (latest_only).
    _CONTENT = (InotifyConstants.IN_CREATE | InotifyConstants.IN_MODIFY | InotifyConstants.IN_ATTRIB
                | InotifyConstants.IN_CLOSE_WRITE)
except ImportError:  # pragma: no cover - not Linux
    InotifyObserver = None

from rclone_jupyter.model.filters import is_noise

log = logging.getLogger(__name__)

# Events that say nothing about content: reading a file, or a directory's own mtime changing because
# something inside it changed (that something gets its own event).
_IGNORED = {"opened", "closed_no_write"}
# The events asked for: the kernel does not even send the others (every upload opens and reads each file:
# that was two events per file, each costing CPU here).
_WANTED = [FileCreatedEvent, DirCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileDeletedEvent,
           DirDeletedEvent, FileMovedEvent, DirMovedEvent]


def relative(root: Path, path: str | bytes, prefix: str | None = None) -> str | None:
    """Given an absolute event path, return it relative to `root` with '/' separators (None for root itself).

    `prefix`: `root` as the observer was given it, with a separator: the observer joins every event path to
    that very text, so the part after it is the relative path (os.path.relpath costs far more, at every
    event of a burst)."""
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if prefix is not None and path.startswith(prefix) and os.sep == "/":
        return path[len(prefix):] or None
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
        self.prefix = os.path.join(str(root), "")  # what the observer is scheduled on (Watcher), with a '/'

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
            self.changed(path, finished)

    def changed(self, path: str | bytes, finished: bool) -> None:
        """An absolute path changed: told to the sink unless it is the root itself or noise."""
        rel = relative(self.root, path, self.prefix)
        if rel is not None and not is_noise(rel):
            self.sink(rel, finished)


# The most of one core the polling fallback may take: each scan of a large tree (every folder listed, every
# file stat'ed) is followed by a wait of at least 1 / POLL_SHARE times what it cost. 20,000 folders scanned
# every 5 s took 14% of a core; the wait then grows instead, and changes arrive later.
POLL_SHARE = 0.02


def poll_wait(interval: float, scan_cpu: float, share: float = POLL_SHARE) -> float:
    """Seconds to wait before the next scan: the interval, or longer when the last scan's CPU would take
    more than `share` of a core at that pace."""
    return max(interval, scan_cpu / share)


class _BoundedPollingEmitter(PollingEmitter):
    """watchdog's polling emitter, waiting longer after a costly scan (poll_wait)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._wait: float | None = None

    def queue_events(self, timeout: float) -> None:
        started = time.thread_time()  # this thread's CPU: the wait costs none, the scan and its diff do
        super().queue_events(timeout if self._wait is None else self._wait)
        self._wait = poll_wait(timeout, time.thread_time() - started)


class PollingObserver(BaseObserver):
    """watchdog's PollingObserver, with its CPU bounded (POLL_SHARE)."""

    def __init__(self, *, timeout: float = DEFAULT_OBSERVER_TIMEOUT):
        super().__init__(_BoundedPollingEmitter, timeout=timeout)


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


# After a read of the inotify descriptor, the reader waits this long before the next one: a burst's events
# then come many files at a time (one wake-up, one read, one parse), and a file's several events of one read are
# told once (latest_only). The first event after a quiet moment is read at once; the kernel's queue
# (fs.inotify.max_queued_events, 16,384 by default) holds far more than a burst writes meanwhile.
GATHER = 0.005


def latest_only(events: Iterable[tuple[int, int, int, bytes]]) -> list[tuple[int, int, int, bytes]]:
    """The events of one read as (watch, mask, cookie, name), less each that a later one about the same file in
    the same folder makes redundant: the handler is told a path and whether it is finished, and the last of a
    file's events says both (created, written, closed: closed). Only a file's own content events (create,
    modify, attrib, close after writing) are dropped, and never across any other event (a folder's, a move, a
    delete, a watch removed, an overflow), which may change what a folder's watch names."""
    kept: list = []
    latest: dict[tuple[int, bytes], int] = {}  # (watch, name) -> the index of its last event kept
    for event in events:
        wd, mask, _cookie, name = event
        if mask & ~_CONTENT:
            latest.clear()
        else:
            earlier = latest.get((wd, name))
            if earlier is not None:
                kept[earlier] = None
            latest[wd, name] = len(kept)
        kept.append(event)
    return [event for event in kept if event is not None]


if InotifyObserver is not None:
    class _BudgetFD(InotifyFD):
        """watchdog's inotify descriptor, telling `on_full` when a watch cannot be added, and `on_overflow`
        when the kernel's event queue overflowed. watchdog itself ignores the first for folders below the
        root, and after the second rebuilds its watches without a word: either way the changes would never be
        seen. Its events are read a burst at a time, on one thread (run)."""

        def __init__(self, on_full: Callable[[bytes], None], on_overflow: Callable[[], None]):
            super().__init__()
            self.on_full = on_full
            self.on_overflow = on_overflow

        def run(self) -> None:
            """Read and handle the events on this thread, as watchdog 7.1.0 does (7.1.1 hands each read to a
            second thread, which cost a wake-up of each thread per few events in a burst), GATHER apart."""
            while self.should_keep_running() and not self._closed:
                read = self._read_event_buffer(DEFAULT_EVENT_BUFFER_SIZE)
                if not read:
                    continue
                for wd, mask, cookie, name in latest_only(InotifyFD._parse_event_buffer(read)):
                    if wd != -1 or mask & InotifyConstants.IN_Q_OVERFLOW:  # as watchdog's read_events keeps them
                        self.handle_event(InotifyEvent(wd, mask, cookie, name))
                time.sleep(GATHER)

        def handle_event(self, event) -> None:
            super().handle_event(event)
            if event.is_queue_overflow:
                self.on_overflow()

        def add_callback(self, path, mask, callback, id_):
            try:
                return super().add_callback(path, mask, callback, id_)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EMFILE):
                    self.on_full(path)
                raise

    class _DirectEmitter(InotifyEmitter):
        """watchdog's inotify emitter, telling the handler each changed path at once (`ChangeHandler.changed`).

        watchdog's own emitter makes event objects (two per new file: its folder's "modified" too), filters them
        against the event classes one by one, and queues them for a dispatcher thread that calls the handler:
        in a burst of 100,000 new files that was most of the daemon's CPU (bench/burst_cpu.py). The paths and
        the `finished` flag are those ChangeHandler.on_any_event gives the same events; the kernel sends only
        the events asked for (the mask watchdog builds from the observer's event filter)."""

        def __init__(self, *args, handler: ChangeHandler, **kwargs):
            super().__init__(*args, **kwargs)
            self._handler = handler

        def build_and_queue_event(self, event, *, full_events: bool = False) -> None:
            tell = self._handler.changed
            if not isinstance(event, PathedInotifyEvent):  # a rename inside the data folder: (from, to)
                move_from, move_to = event
                tell(move_from.path, True)
                tell(move_to.path, True)
                if move_from.ev.is_directory and self.watch.is_recursive:
                    for sub in generate_sub_moved_events(move_from.path, move_to.path):
                        tell(sub.src_path, True)
                        tell(sub.dest_path, True)
                return
            ev, path = event.ev, event.path
            if ev.is_moved_to:  # from outside the data folder: whole, as is everything in a folder moved in
                tell(path, True)
                if ev.is_directory and self.watch.is_recursive:
                    for sub in generate_sub_created_events(path):
                        tell(sub.src_path, True)
            elif ev.is_attrib:
                tell(path, False)
            elif ev.is_modify:
                if not ev.is_directory:  # a folder's own mtime: what changed in it has its own event
                    tell(path, False)
            elif ev.is_delete or ev.is_moved_from:  # moved out of the data folder: gone from it
                tell(path, True)
            elif ev.is_create:
                # A new folder or link is whole at once; a new file is being written until it is closed.
                tell(path, ev.is_directory or os.path.islink(path))
            elif ev.is_delete_self and path == os.fsencode(self.watch.path):
                self.stop()  # the data folder itself is gone (as watchdog's emitter does)
            elif ev.is_close_write and not ev.is_directory:
                tell(path, True)

    class BudgetObserver(InotifyObserver):
        """watchdog's inotify observer, with a failed watch reported instead of ignored, and the handler told
        without watchdog's dispatcher (_DirectEmitter)."""

        def __init__(self, on_full: Callable[[bytes], None], on_overflow: Callable[[], None], handler: ChangeHandler,
                     *, timeout: float = DEFAULT_OBSERVER_TIMEOUT):
            self._inotify_fd = _BudgetFD(on_full, on_overflow)
            self._inotify_fd.start()
            BaseObserver.__init__(self, _DirectEmitter, timeout=timeout, inotify_fd=self._inotify_fd,
                                  handler=handler)


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
        self._handler: ChangeHandler | None = None
        self._switching = False  # a watch failed: scanning replaces inotify
        self.polling = False

    def start(self) -> None:
        handler = self._handler = ChangeHandler(self.root, self.sink)
        observer = (BudgetObserver(self._watch_failed, self._events_lost, handler) if InotifyObserver is not None
                    else Observer())
        limit = self.watch_limit if self.watch_limit is not None else system_watch_limit()
        try:
            if limit is not None and more_folders_than(self.root, limit):
                raise OSError(errno.ENOSPC, f"more than {limit} folders to watch")
            observer.schedule(handler, str(self.root), recursive=True, event_filter=_WANTED)
            observer.start()
            if self._switching:  # a folder below the root could not be watched (watchdog goes on without it)
                raise OSError(errno.ENOSPC, "inotify watch limit reached")
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            log.warning(
                "WARNING: the data folder has more folders than the inotify watch limit allows (%s, "
                "fs.inotify.max_user_watches); falling back to scanning it every %g s (less often if a scan "
                "costs more than 2%% of a core at that pace). Changes still sync, later and at more CPU cost. "
                "Raise the limit on the host to get instant syncs.",
                exc.strerror or exc, self.poll_interval,
            )
            try:
                observer.stop()
            except Exception:  # noqa: BLE001 - a half-started observer may fail to stop; we replace it anyway
                pass
            observer = self._poll()
        self._observer = observer
        log.info("watching %s for changes%s", self.root, " (polling)" if self.polling else "")

    def _poll(self) -> PollingObserver:
        """Scan instead of watching; the owner walks the whole tree once (on_fallback) for what was missed."""
        observer = PollingObserver(timeout=self.poll_interval)
        observer.schedule(self._handler, str(self.root), recursive=True, event_filter=_WANTED)
        observer.start()
        self.polling = True
        if self.on_fallback is not None:
            self.on_fallback()
        return observer

    def _watch_failed(self, path: bytes) -> None:
        """A folder made while running could not be watched (the inotify budget is per user on the node,
        shared with everything else): changes in it would go unseen. Called on watchdog's thread, so the
        switch to scanning runs on a thread of its own."""
        if self.polling or self._switching:
            return
        self._switching = True
        if self._observer is None:
            return  # still starting: start() switches at once
        log.warning("the inotify watch limit was reached while running (%s could not be watched); switching to "
                    "scanning the data folder every %g s, after one full walk for what was missed. Raise "
                    "fs.inotify.max_user_watches on the host to get instant syncs", os.fsdecode(path),
                    self.poll_interval)
        threading.Thread(target=self._switch_to_polling, name="watch-fallback", daemon=True).start()

    def _events_lost(self) -> None:
        """The kernel dropped events (a burst larger than fs.inotify.max_queued_events): the owner walks the
        whole tree for what they said (on_fallback). Watching goes on as before."""
        log.warning("the inotify event queue overflowed (a burst of more than fs.inotify.max_queued_events "
                    "changes); comparing the whole data folder with the bucket for what was missed")
        if self.on_fallback is not None:
            self.on_fallback()

    def _switch_to_polling(self) -> None:
        old = self._observer
        self._observer = self._poll()  # the walk is queued before the old observer goes: nothing unseen
        if old is not None:
            old.stop()
            old.join(timeout=5)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
