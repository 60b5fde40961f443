"""The reconcile: bring in what changed in the bucket folder from elsewhere, from one LIST-only listing.

What to do is decided by reconcile_plan.plan (a pure function); this carries it out: pull, delete here, keep
both, push again, and the manifest's modes and empty folders.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.push import PushResult, Pusher
from rclone_jupyter.engine.store import Store
from rclone_jupyter.engine.transfers import Transfers
from rclone_jupyter.local.tree import walk_versions
from rclone_jupyter.model import reconcile_plan
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import Version, ancestors, local_name, local_version, same, under_link

log = logging.getLogger(__name__)


def disappeared(store: Store, names: Sequence[str], *, every: bool = False) -> None:
    """Files vanished from the bucket in a way that looks like an accident: they are not deleted here."""
    log.error("%s%d file(s) disappeared from %s since the last sync (e.g. %s). Not deleting them here: the local "
              "copies are kept and uploaded again. Delete files from JupyterLab to delete them.",
              "all " if every else "", len(names), store.display, ", ".join(list(names)[:5]))


@dataclasses.dataclass
class Reconciler:
    store: Store
    baseline: Baseline
    data_dir: Path
    bucket: Bucket
    manifest: ManifestSync
    transfers: Transfers
    pusher: Pusher  # a change here that wins is pushed, a conflict kept twice, as a push does it

    def observe(self, changed_here: Callable[[str], bool], *, dry_run: bool = False) -> tuple[
            reconcile_plan.Plan, dict[str, Version], dict[str, Version | None]]:
        """One listing, and the plan for it (nothing changed yet): (plan, listing, the data folder as seen)."""
        listing = self.bucket.listing(note_manifest=not dry_run)
        seen: dict[str, Version | None] = {}

        def local(key: str) -> Version | None:
            seen[key] = local_version(self.data_dir, key)
            return seen[key]

        plan = reconcile_plan.plan(self.baseline, listing, local, lambda key: changed_here(local_name(key)))
        return plan, listing, seen

    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *, walk: bool = False) -> PushResult:
        """Bring changes made elsewhere in, from one LIST-only listing compared with the baseline.

        `changed_here(name)` says whether this container changed a data folder path since (queued or in
        flight): such a path is never overwritten or deleted here. `walk` (the watcher lost track) first
        compares the whole data folder with the baseline and pushes what differs.
        """
        started = time.monotonic()
        result = PushResult(reconciled=True)
        if walk:
            self._push_walk()
        plan, listing, seen = self.observe(changed_here)
        self.manifest.merge(changed_here, self.baseline)
        for key, listed in plan.adopt.items():
            self.baseline.adopt(key, listed)
        if plan.disappeared:
            disappeared(self.store, plan.disappeared)
        if plan.pull:
            # Placed only where the data folder is still as the plan saw it.
            placed = self.transfers.download({key: local_name(key) for key in plan.pull},
                                             expect={local_name(key): seen.get(key) for key in plan.pull},
                                             listing=listing)
            result.pulled = len(placed)
        for key in plan.delete_here:
            if self._delete_here(key):
                result.deleted += 1
        self.baseline.forget(plan.forget + plan.push)
        if plan.keep_both:
            theirs = self.bucket.versions(plan.keep_both, self.baseline)
            self.pusher.keep_both({key: theirs[key] for key in plan.keep_both if key in theirs})
            result.conflicts = len(plan.keep_both)
        if plan.push:
            pushed = self.pusher.push_paths(local_name(key) for key in plan.push)
            result.uploaded = pushed.uploaded
        if plan.changes_here():
            log.info("%d change(s) made in %s from elsewhere brought here: %d new or changed, %d deleted, %d kept "
                     "twice", plan.changes_here(), self.store.display, result.pulled, result.deleted,
                     result.conflicts)
        result.seconds = time.monotonic() - started
        return result

    def _push_walk(self) -> None:
        """The watcher lost track: push every difference between the data folder and the baseline."""
        here = walk_versions(self.data_dir, on_unsaveable=self.pusher.cannot_save)
        changed = {local_name(key) for key, v in here.items() if key not in self.baseline
                   or not same(v, self.baseline[key].version)}
        changed |= {local_name(key) for key in self.baseline if key not in here}
        if changed:
            self.pusher.push_paths(changed)

    def _delete_here(self, key: str) -> bool:
        """Delete a data folder file deleted elsewhere, if it is still the version we knew."""
        rel = local_name(key)
        known = self.baseline.get(key)
        self.baseline.forget([key])
        if known is None or under_link(self.data_dir, rel) or not same(local_version(self.data_dir, key),
                                                                         known.version):
            return False
        os.unlink(self.data_dir / rel)
        # Folders the deletion emptied go too (the bucket has no folder there any more).
        for parent in reversed(ancestors(rel)):
            try:
                os.rmdir(self.data_dir / parent)
            except OSError:
                break
        return True
