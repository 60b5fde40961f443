"""The reconcile phase: bring in what changed in the bucket folder from elsewhere, from one LIST-only listing.

What to do is decided by reconcile_plan.plan (a pure function); this carries it out: pull, delete here, keep
both, push again, and the manifest's modes and empty folders. Mixed into Engine (engine/core.py).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable

from rclone_jupyter.model import reconcile_plan
from rclone_jupyter.model.known import Version, local_name, local_version, same, under_link
from rclone_jupyter.engine.push import PushResult
from rclone_jupyter.model.manifest import Manifest
from rclone_jupyter.local.tree import STAGING_PREFIX, is_empty_folder, place, unrepresentable, walk_versions

log = logging.getLogger(__name__)


class ReconcilePhase:
    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *, walk: bool = False) -> PushResult:
        """Bring changes made elsewhere in, from one LIST-only listing compared with `known` (reconcile_plan.plan).

        `changed_here(name)` says whether this container changed a data folder path since (queued or in
        flight): such a path is never overwritten or deleted here. `walk` (the watcher lost track) first
        compares the whole data folder with `known` and pushes what differs.
        """
        if self.push_mode == "bisync":
            self.bisync.reconcile()
            return PushResult(reconciled=True)
        started = time.monotonic()
        result = PushResult(reconciled=True)
        waiting = self._take_arrivals()
        if walk:
            self._push_walk()
        # A large file of the start still on its way is the background restore's: not "added elsewhere" (a pull
        # here would fetch it twice), and, never being known, never "deleted here".
        listing = {key: v for key, v in self._listing().items() if key not in waiting}
        seen: dict[str, Version | None] = {}

        def local(key: str) -> Version | None:
            seen[key] = local_version(self.data_dir, key)
            return seen[key]

        plan = reconcile_plan.plan(self.known, listing, local, lambda key: changed_here(local_name(key)))
        self._merge_manifest(changed_here)
        for key, listed in plan.adopt.items():
            self.known[key] = dataclasses.replace(self.known[key], listed=listed)
        if plan.disappeared:
            log.error("ERROR: %d file(s) disappeared from %s since the last sync (e.g. %s). Not deleting them here: "
                      "the local copies are kept and uploaded again. Delete files from JupyterLab to delete them.",
                      len(plan.disappeared), self.remote.display, ", ".join(plan.disappeared[:5]))
        if plan.pull:
            # Placed only where the data folder is still as the plan saw it.
            placed = self._download({key: local_name(key) for key in plan.pull},
                                    expect={local_name(key): seen.get(key) for key in plan.pull}, listing=listing)
            result.pulled = len(placed)
        for key in plan.delete_here:
            if self._delete_here(key):
                result.deleted += 1
        for key in plan.forget + plan.push:
            self.known.pop(key, None)
        if plan.keep_both:
            theirs = self._stat_remote(plan.keep_both)
            self._keep_both({key: theirs[key] for key in plan.keep_both if key in theirs})
            result.conflicts = len(plan.keep_both)
        if plan.push:
            pushed = self._push_paths(local_name(key) for key in plan.push)
            result.uploaded = pushed.uploaded
        if plan.changes_here():
            log.info("%d change(s) made in %s from elsewhere brought here: %d new or changed, %d deleted, %d kept "
                     "twice", plan.changes_here(), self.remote.display, result.pulled, result.deleted,
                     result.conflicts)
        result.seconds = time.monotonic() - started
        return result

    def _push_walk(self) -> None:
        """The watcher lost track: push every difference between the data folder and `known`."""
        here = walk_versions(self.data_dir)
        changed = {local_name(key) for key, v in here.items() if key not in self.known
                   or not same(v, self.known[key].version)}
        changed |= {local_name(key) for key in self.known if key not in here}
        if changed:
            self._push_paths(changed)

    def _delete_here(self, key: str) -> bool:
        """Delete a data folder file deleted elsewhere, if it is still the version we knew."""
        rel = local_name(key)
        known = self.known.pop(key, None)
        if known is None or under_link(self.data_dir, rel) or not same(local_version(self.data_dir, key),
                                                                         known.version):
            return False
        os.unlink(self.data_dir / rel)
        # Folders the deletion emptied go too (the bucket has no folder there any more).
        parent = os.path.dirname(rel)
        while parent:
            try:
                os.rmdir(self.data_dir / parent)
            except OSError:
                break
            parent = os.path.dirname(parent)
        return True



    def _merge_manifest(self, changed_here: Callable[[str], bool]) -> None:
        """The manifest changed elsewhere: take its modes for every file not changed here, and apply them."""
        seen = self._manifest_seen
        if seen is None or seen == self._manifest_listed:
            return
        if self._manifest_listed is None and self._manifest_size == seen[0]:
            self._manifest_listed = seen  # our own upload, listed now
            return
        modes, folders = Manifest.load(self._read_manifest())
        self._manifest_listed, self._manifest_size = seen, seen[0]
        for key in set(modes) | set(self.manifest.modes):
            if changed_here(local_name(key)) or key not in self.known:
                continue
            if modes.get(key) != self.manifest.modes.get(key):
                if key in modes:
                    self.manifest.modes[key] = modes[key]
                else:
                    self.manifest.modes.pop(key, None)
                self.manifest.apply(self.data_dir, key)
        new = {f for f in folders - self.manifest.folders if not changed_here(local_name(f))}
        gone = {f for f in self.manifest.folders - folders if not changed_here(local_name(f))}
        self.manifest.folders = (self.manifest.folders | new) - gone
        self._make_folders(new)
        for name in sorted(gone, key=lambda f: -f.count("/")):
            rel = local_name(name)
            if not under_link(self.data_dir, rel) and is_empty_folder(self.data_dir / rel):
                os.rmdir(self.data_dir / rel)

    def _make_folders(self, names: Iterable[str]) -> None:
        """Create the manifest's empty folders here (never through a link)."""
        for name in sorted(names):
            rel = local_name(name)
            if unrepresentable(name) or os.path.lexists(self.data_dir / rel):
                continue
            marker = self.data_dir / f"{STAGING_PREFIX}folder"
            marker.mkdir(exist_ok=True)
            if not place(self.data_dir, marker, rel):
                marker.rmdir()
