"""One remote's engine: the parts built once, and the mode chosen once (engine/modes.py).

The parts, each with one job, each taking the store (engine/store.py), the baseline (model/baseline.py) and
the data folder:
- `Bucket` (engine/bucket.py): listings, the objects the data folder cannot hold, the versions of names now;
- `ManifestSync` (engine/manifest_sync.py): file modes and empty folders, read, written, merged;
- `Transfers` (engine/transfers.py): upload and download, each recorded in the baseline when it lands;
- `Restorer` (engine/restore.py), `Pusher` (engine/push.py), `Reconciler` (engine/reconcile.py), and
  `Bisync` (engine/bisync.py) for the bisync mode.

One worker thread drives an Engine (daemon/syncer.py); across processes (`start` and `sync --once`) a file lock
per remote makes sure two writing rclone runs never meet on one remote. The rules: docs/design.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rclone_jupyter.config.remotes import KERNEL_FILES_DIR, Remote
from rclone_jupyter.config.settings import Keep
from rclone_jupyter.engine.bisync import Bisync
from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.keeper import Keeper
from rclone_jupyter.engine.large import LargeUploads
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.modes import BisyncMode, Mode, Targeted
from rclone_jupyter.engine.push import PushResult, Pusher
from rclone_jupyter.engine.reconcile import Reconciler
from rclone_jupyter.engine.restore import Progress, Restorer
from rclone_jupyter.engine.transfers import Transfers
from rclone_jupyter.engine.trash import TrashFolder
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.changes import Batch
from rclone_jupyter.model.known import Version
from rclone_jupyter.model.to_come import ToCome
from rclone_jupyter.rclone.retry import RetryPolicy
from rclone_jupyter.rclone.runner import Rclone
from rclone_jupyter.rclone.store import RcloneStore
from rclone_jupyter.state import FileLock, StateDir

TARGETED, BISYNC = "targeted", "bisync"


class Engine:
    """One remote. `mode`: targeted or bisync. `pending_here()`: the data folder paths changed here and not
    pushed yet (the syncer's change set). `retry` is the policy of the start phases (restore, establish);
    `retry_after_start` the policy once they are done (ONE_ATTEMPT when a syncer owns retries)."""

    def __init__(self, rclone: Rclone, remote: Remote, data_dir: Path, state: StateDir, *, mode: str = TARGETED,
                 pending_here: Callable[[], set[str]] = set, retry: RetryPolicy = RetryPolicy(),
                 retry_after_start: RetryPolicy | None = None, keep: Keep = Keep()):
        self.rclone = rclone
        self.remote = remote
        self.data_dir = data_dir
        self.state = state
        self.lock = FileLock(state.lock_path(f"remote-{remote.name}"))
        self.store = RcloneStore(rclone, remote, self.lock, state.scratch, retry=retry)
        self._retry_after_start = retry_after_start or retry
        self.baseline = Baseline()
        self.manifest = ManifestSync(self.store, data_dir)
        self.bucket = Bucket(self.store, self.manifest)
        self.bucket.skipped_file = state.path / f"skipped-{remote.name}.txt"
        transfers = Transfers(self.store, self.baseline, data_dir, self.bucket, self.manifest, state.scratch,
                              (state.config_path, state.path / KERNEL_FILES_DIR))
        # What the push replaces is kept in the bucket folder's trash first (engine/keeper.py).
        self.keeper = Keeper(TrashFolder(self.store, remote.root), keep)
        # The large files of the start still on their way (engine/background.py), shared with its thread.
        self.to_come = ToCome()
        self.pusher = Pusher(self.store, self.baseline, data_dir, self.bucket, self.manifest, transfers,
                             self.keeper, self.to_come)
        transfers.cannot_save = self.pusher.cannot_save
        self.restorer = Restorer(self.store, self.baseline, data_dir, self.bucket, self.manifest, transfers,
                                 self.pusher, self.to_come)
        uploading: set[str] = set()  # the large lane's uploads now: the reconcile leaves them alone
        self.reconciler = Reconciler(self.store, self.baseline, data_dir, self.bucket, self.manifest, transfers,
                                     self.pusher, self.to_come, uploading)
        self.bisync = Bisync(self.store, self.baseline, data_dir, state.workdir(remote.name), self.pusher,
                             pending_here)
        self.mode: Mode = MODES[mode](self)
        # The large lane's uploads (daemon/lanes.py); bisync mode has none: its bisync run carries every file.
        self.large = (LargeUploads(self.store, self.baseline, data_dir, self.bucket, self.manifest, transfers,
                                   self.keeper, uploading) if mode == TARGETED else None)

    # -- the start phases -----------------------------------------------------------------------------

    def check_bucket(self) -> None:
        self.restorer.check_bucket()

    def use_listing(self, listing: dict[str, Version]) -> None:
        self.bucket.use_listing(listing)

    def restore(self, *, merge: bool = False, on_progress: Progress | None = None,
                large_from: int | None = None) -> None:
        self.restorer.restore(merge=merge, on_progress=on_progress, large_from=large_from)

    def establish(self, *, merged: bool = False, several: bool = False) -> None:
        self.mode.establish(merged=merged, several=several)
        self.baseline.compact()  # after the start's listings and walks are freed (model/baseline.py)
        # The start phases are done: from here on the caller that drives this engine may own retries.
        self.store.retry = self._retry_after_start

    @property
    def remote_was_empty(self) -> bool:
        return self.restorer.remote_was_empty

    @property
    def skipped(self) -> dict[str, str]:
        return self.bucket.skipped

    def skipped_shown(self) -> dict:
        return self.bucket.skipped_shown()

    @property
    def not_saved(self) -> dict[str, str]:
        return self.pusher.not_saved

    def not_saved_shown(self, limit: int = 50) -> dict[str, str]:
        return self.pusher.not_saved_shown(limit)

    # -- syncing --------------------------------------------------------------------------------------

    def push(self, batch: Batch) -> PushResult:
        """Make the bucket hold what the data folder holds for the paths in `batch`."""
        return self.mode.push(batch)

    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *,
                  walk: bool = False) -> PushResult:
        """Bring in what changed elsewhere; `changed_here(path)`: never overwrite or delete that path here."""
        return self.mode.reconcile(changed_here, walk=walk)

    def plan(self, pending: set[str] = frozenset()) -> list[str]:
        """What a `sync --once` would do now (`pending`: paths changed here, not pushed yet). Changes nothing."""
        return self.mode.plan(set(pending))


MODES: dict[str, Callable[[Engine], Mode]] = {
    TARGETED: lambda e: Targeted(e.restorer, e.pusher, e.reconciler, e.keeper),
    BISYNC: lambda e: BisyncMode(e.bisync, keep=e.keeper.keep.on),
}
