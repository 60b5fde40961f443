"""The sync status (DESIGN invariant 3): written by `start` to the state dir, read by `status` anywhere.

A change counts as durable only when the rclone run that carried it exited 0; until then it is pending.

A burst of 100,000 new files is 100,000 calls of `remote()`: the file is written at most once per
MIN_INTERVAL for them (the last state always lands, at most an interval later), and the pending changes are
read only when the file is written, so a burst costs linear time. A remote's pending changes are read as a
count and the few paths listed (a PendingSource: the syncer's costs O(listed), not O(pending)); only the
union of several remotes needs every path. The interval also grows to WRITE_SHARE times the last write's
duration: writing never takes more than 1/WRITE_SHARE of the time. `set()` (phases, the restore, the disk)
is rare and is written at once.
"""

from __future__ import annotations

import datetime as dt
import enum
import heapq
import logging
import os
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Protocol

from rclone_jupyter.state import StateDir, holder_pid, read_json, write_json

log = logging.getLogger(__name__)

MAX_LISTED = 50  # pending paths listed in the file; the count is always exact
MIN_INTERVAL = 0.25  # seconds between two writes of the file for `remote()` updates
WRITE_SHARE = 20  # ... and at least this many times the last write's duration


class PendingSource(Protocol):
    """One remote's pending changes as the status shows them."""

    def count(self) -> int: ...

    def first(self, limit: int) -> list[str]:
        """The paths to list (at most `limit`), in the order to list them."""

    def paths(self) -> Collection[str]:
        """All of them (for the union of several remotes)."""


class _Listed:
    """A PendingSource over a plain collection of paths: listed in name order."""

    def __init__(self, paths: Collection[str]):
        self._paths = paths

    def count(self) -> int:
        return len(self._paths)

    def first(self, limit: int) -> list[str]:
        return heapq.nsmallest(limit, self._paths)

    def paths(self) -> Collection[str]:
        return self._paths


_NONE = _Listed(())

# The pending paths, a function giving them, or a PendingSource (read when the file is written).
Pending = Collection[str] | Callable[[], Collection[str]] | PendingSource


def _as_source(pending: Collection[str] | PendingSource) -> PendingSource:
    return pending if hasattr(pending, "first") else _Listed(frozenset(pending))


class Phase(enum.Enum):
    """Where `start` is, as the status's `phase` says it."""

    STARTING = "starting"
    CHECKING = "checking"
    RESTORING = "restoring"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"
# Every data folder path the restore still has to bring (large files after JupyterLab started), one a line.
TO_COME_FILE = "restore-to-come.txt"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def iso(timestamp: float) -> str:
    """A wall-clock time (time.time()) as the status writes times."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="milliseconds")


class StatusBoard:
    """The daemon's view of every remote, saved atomically to status.json on each change."""

    def __init__(self, path: Path, remotes: dict[str, str], *, persistent: bool, loss_window: float | None = None,
                 min_interval: float = MIN_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 timer: Callable[[float, Callable[[], None]], object] | None = None):
        self.path = path
        self.min_interval = min_interval
        self.clock = clock
        self._timer = timer or _daemon_timer  # runs a deferred write: (delay, function)
        self._written_at: float | None = None
        self._interval = min_interval
        self._deferred = False  # a deferred write is scheduled
        self._lock = threading.Lock()
        self._data: dict = {
            "pid": os.getpid(),
            "phase": Phase.STARTING.value,
            "persistent": persistent,
            "started": now_iso(),
            "remotes": {
                name: {"display": display, "last_sync": None, "last_reconcile": None, "pending": 0,
                       "pending_paths": [], "oldest_pending": None, "last_error": None, "last_error_at": None,
                       "state": "starting", "skipped": {}, "skipped_count": 0, "skipped_file": None, "not_saved": {}}
                for name, display in remotes.items()
            },
            "manual_sync": None,
            "jupyter": None,
            # The restore's progress (the JupyterLab status item shows it): state running/done/failed.
            "restore": None,
            # About how long after a save a change is in the bucket (the debounce's quiet period at most).
            "loss_window_seconds": loss_window,
        }
        self._pending: dict[str, Pending] = {name: _NONE for name in remotes}
        self._write_failed = False
        self._save()

    def set(self, **fields) -> None:
        with self._lock:
            self._data.update(fields)
            self._save()

    def set_phase(self, phase: Phase) -> None:
        self.set(phase=phase.value)

    def remote(self, name: str, *, pending: Pending | None = None, **fields) -> None:
        """Update one remote's entry; `pending`, and any field's value, may be a function, called when the file is
        written (a burst of new files updates the entry at every event, and the file is written a few times a
        second)."""
        with self._lock:
            self._data["remotes"][name].update(fields)
            if pending is not None:
                self._pending[name] = pending if callable(pending) else _as_source(pending)
            now = self.clock()
            if self._written_at is None or now - self._written_at >= self._interval:
                self._save()
            elif not self._deferred:
                self._deferred = True
                self._timer(self._written_at + self._interval - now, self._write_deferred)

    def _write_deferred(self) -> None:
        with self._lock:
            if self._deferred:  # not written meanwhile by set()
                self._save()

    def snapshot(self) -> dict:
        with self._lock:
            return _summarise(dict(self._data), self._read_pending())

    def _read_pending(self) -> dict[str, PendingSource]:
        return {name: _as_source(source()) if callable(source) else source for name, source in self._pending.items()}

    def _save(self) -> None:
        """Write status.json; a failed write (a full disk) never stops the caller: the next change retries it."""
        started = self._written_at = self.clock()
        self._deferred = False
        try:
            write_json(self.path, _summarise(self._data, self._read_pending()))
        except OSError as exc:
            if not self._write_failed:
                log.warning("WARNING: cannot write the status file %s (%s); syncing goes on, `rclone-jupyter "
                            "status` shows older news until it can be written again", self.path, exc.strerror or exc)
            self._write_failed = True
        else:
            if self._write_failed:
                log.info("the status file %s is written again", self.path)
            self._write_failed = False
        self._interval = max(self.min_interval, WRITE_SHARE * (self.clock() - started))


def _daemon_timer(delay: float, function: Callable[[], None]) -> None:
    timer = threading.Timer(delay, function)
    timer.daemon = True  # the supervisor's last set() writes the final status; a late deferred write adds nothing
    timer.start()


def _summarise(data: dict, pending_by_remote: dict[str, PendingSource]) -> dict:
    """Add the top-level keys: `last_sync` (when everything was last durable everywhere), `pending`, `last_error`;
    and each remote's pending count and first paths. One remote: as its source gives them; several: their
    union, linear in the pending paths (no full sort)."""
    out = dict(data)
    out["remotes"] = remotes = {name: {key: value() if callable(value) else value for key, value in entry.items()}
                                for name, entry in data["remotes"].items()}
    for name, entry in remotes.items():
        source = pending_by_remote.get(name, _NONE)
        entry["pending"] = source.count()
        entry["pending_paths"] = source.first(MAX_LISTED)
    if len(remotes) == 1:
        (entry,) = remotes.values()
        out["pending"], out["pending_paths"] = entry["pending"], entry["pending_paths"]
    else:
        union = set().union(*(source.paths() for source in pending_by_remote.values()))
        out["pending"] = len(union)
        out["pending_paths"] = heapq.nsmallest(MAX_LISTED, union)
    syncs = [r["last_sync"] for r in remotes.values()]
    out["last_sync"] = None if (not syncs or None in syncs) else min(syncs)
    errors = [f"{name}: {r['last_error']}" for name, r in remotes.items() if r["last_error"]]
    out["last_error"] = "; ".join(errors) if errors else None
    out["updated"] = now_iso()
    return out


def read(path: Path) -> dict | None:
    return read_json(path)


def current(state: StateDir) -> dict:
    """Given the state dir, return the status as `status --json` and the JupyterLab extension show it.

    `running` says whether a daemon holds the state dir's lock now; a status file left by a stopped one is
    still shown, marked not running.
    """
    data = read(state.status_path)
    if data is None:
        data = {"phase": "not started", "last_sync": None, "pending": 0, "last_error": None, "remotes": {}}
    data["running"] = bool(holder_pid(state.lock_path("daemon"))) if state.path.exists() else False
    return data
