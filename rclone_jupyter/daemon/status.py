"""The sync status (DESIGN invariant 3): written by `start` to the state dir, read by `status` anywhere.

A change counts as durable only when the rclone run that carried it exited 0; until then it is pending.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from pathlib import Path

from rclone_jupyter.state import StateDir, holder_pid, read_json, write_json

log = logging.getLogger(__name__)

MAX_LISTED = 50  # pending paths listed in the file; the count is always exact
# Every data folder path the restore still has to bring (large files after JupyterLab started), one a line.
TO_COME_FILE = "restore-to-come.txt"


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def iso(timestamp: float) -> str:
    """A wall-clock time (time.time()) as the status writes times."""
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat(timespec="milliseconds")


class StatusBoard:
    """The daemon's view of every remote, saved atomically to status.json on each change."""

    def __init__(self, path: Path, remotes: dict[str, str], *, persistent: bool, loss_window: float | None = None):
        self.path = path
        self._lock = threading.Lock()
        self._data: dict = {
            "pid": os.getpid(),
            "phase": "starting",
            "persistent": persistent,
            "started": now_iso(),
            "remotes": {
                name: {"display": display, "last_sync": None, "last_reconcile": None, "pending": 0,
                       "pending_paths": [], "oldest_pending": None, "last_error": None, "last_error_at": None,
                       "state": "starting", "skipped": {}}
                for name, display in remotes.items()
            },
            "manual_sync": None,
            "jupyter": None,
            # The restore's progress (the JupyterLab status item shows it): state running/done/failed.
            "restore": None,
            # About how long after a save a change is in the bucket (the debounce's quiet period at most).
            "loss_window_seconds": loss_window,
        }
        self._pending: dict[str, set[str]] = {name: set() for name in remotes}
        self._write_failed = False
        self._save()

    def set(self, **fields) -> None:
        with self._lock:
            self._data.update(fields)
            self._save()

    def remote(self, name: str, *, pending: set[str] | None = None, **fields) -> None:
        with self._lock:
            entry = self._data["remotes"][name]
            entry.update(fields)
            if pending is not None:
                self._pending[name] = set(pending)
                entry["pending"] = len(pending)
                entry["pending_paths"] = sorted(pending)[:MAX_LISTED]
            self._save()

    def snapshot(self) -> dict:
        with self._lock:
            return _summarise(dict(self._data), self._pending)

    def _save(self) -> None:
        """Write status.json; a failed write (a full disk) never stops the caller: the next change retries it."""
        try:
            write_json(self.path, _summarise(self._data, self._pending))
        except OSError as exc:
            if not self._write_failed:
                log.warning("WARNING: cannot write the status file %s (%s); syncing goes on, `rclone-jupyter "
                            "status` shows older news until it can be written again", self.path, exc.strerror or exc)
            self._write_failed = True
        else:
            if self._write_failed:
                log.info("the status file %s is written again", self.path)
            self._write_failed = False


def _summarise(data: dict, pending_by_remote: dict[str, set[str]]) -> dict:
    """Add the top-level keys: `last_sync` (when everything was last durable everywhere), `pending`, `last_error`."""
    out = dict(data)
    remotes = data["remotes"].values()
    syncs = [r["last_sync"] for r in remotes]
    out["last_sync"] = None if (not syncs or None in syncs) else min(syncs)
    union: set[str] = set().union(*pending_by_remote.values()) if pending_by_remote else set()
    out["pending"] = len(union)
    out["pending_paths"] = sorted(union)[:MAX_LISTED]
    errors = [f"{name}: {r['last_error']}" for name, r in data["remotes"].items() if r["last_error"]]
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
