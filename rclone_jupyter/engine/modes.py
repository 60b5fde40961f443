"""The two ways to sync a remote, chosen once when the engine is built (Syncthing's folder factories).

- `Targeted` (the default): pushes exactly the watcher's paths (engine/push.py) and brings in changes made
  elsewhere from LIST-only listings (engine/reconcile.py).
- `BisyncMode` (RCLONE_JUPYTER_PUSH_MODE=bisync, and `sync --once` with no `start` running): every push and
  every reconcile is one `rclone bisync` (engine/bisync.py).

Both answer the same three calls: establish (after the restore), push (a batch of changed paths), reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from rclone_jupyter.engine.bisync import Bisync
from rclone_jupyter.engine.keeper import Keeper
from rclone_jupyter.engine.push import PushResult, Pusher
from rclone_jupyter.engine.reconcile import Reconciler
from rclone_jupyter.engine.restore import Restorer
from rclone_jupyter.model.changes import Batch
from rclone_jupyter.model.known import covered


class Mode(Protocol):
    def establish(self, *, merged: bool, several: bool) -> None:
        """After the restore of every remote: the baseline. `merged`: this remote was merged into a data folder
        an earlier one filled; `several`: more than one remote is configured."""

    def push(self, batch: Batch) -> PushResult: ...

    def reconcile(self, changed_here: Callable[[str], bool], *, walk: bool = False) -> PushResult: ...

    def plan(self, pending: set[str]) -> list[str]:
        """What a `sync --once` would do now, with `pending` the paths changed here and not pushed yet, as
        lines a person reads. Changes nothing."""


class Targeted:
    def __init__(self, restorer: Restorer, pusher: Pusher, reconciler: Reconciler, keeper: Keeper):
        self.restorer = restorer
        self.pusher = pusher
        self.reconciler = reconciler
        self.keeper = keeper

    def establish(self, *, merged: bool = False, several: bool = False) -> None:
        if several:
            # The merge kept both versions of every disagreement: the data folder holds them all.
            self.restorer.prefer_local()
        self.restorer.establish()

    def push(self, batch: Batch) -> PushResult:
        if batch.overflow:  # the watcher lost track: compare everything
            started = time.monotonic()
            self.reconciler.reconcile(changed_here=lambda _key: True, walk=True)
            return PushResult(reconciled=True, seconds=time.monotonic() - started)
        return self.pusher.push_paths(batch.paths)

    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *,
                  walk: bool = False) -> PushResult:
        result = self.reconciler.reconcile(changed_here, walk=walk)
        self.keeper.expire()  # versions kept longer than KEEP_DAYS (a LIST of the trash only when one is due)
        return result

    def plan(self, pending: set[str]) -> list[str]:
        # The push of what is pending, then the reconcile's look (which never touches a pending path).
        pushed = self.pusher.observe(pending).lines() if pending else []
        looked, _, _ = self.reconciler.observe(lambda rel: covered(rel, pending), dry_run=True)
        return pushed + looked.lines()


class BisyncMode:
    def __init__(self, bisync: Bisync, *, keep: bool = False):
        self.bisync = bisync
        self.keep = keep  # a `sync --once` alone keeps what it deletes or overwrites in the bucket (RCLONE_JUPYTER_KEEP_DAYS)

    def establish(self, *, merged: bool = False, several: bool = False) -> None:
        self.bisync.baseline(prefer_local=merged)

    def push(self, batch: Batch) -> PushResult:
        started = time.monotonic()
        self.bisync.reconcile(extra_observed=batch.paths)
        return PushResult(reconciled=True, seconds=time.monotonic() - started)

    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *,
                  walk: bool = False) -> PushResult:
        self.bisync.reconcile()
        return PushResult(reconciled=True)

    def plan(self, pending: set[str]) -> list[str]:
        return self.bisync.dry_run()

    def sync_alone(self) -> None:
        """`sync --once` with no `start` running: bisync keeps its own baseline between runs. What it deletes or
        overwrites in the bucket is kept in the trash first. (In RCLONE_JUPYTER_PUSH_MODE=bisync every save is a
        bisync: keeping there would keep every version of a file saved every minute, not one per KEEP_EVERY.)"""
        if self.bisync.has_baseline():
            self.bisync.reconcile(keep=self.keep)
        else:
            self.bisync.baseline()
