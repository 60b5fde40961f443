"""The reconcile: bring in what changed in the bucket folder from elsewhere, from one LIST-only listing.

What to do is decided by reconcile_plan.plan (a pure function); this carries it out: pull, delete here, keep
both, push again, and the manifest's modes and empty folders.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.push import PushResult, Pusher
from rclone_jupyter.engine.store import Store
from rclone_jupyter.engine.transfers import Transfers
from rclone_jupyter.local.tree import free_bytes, walk_versions
from rclone_jupyter.logs import human_size
from rclone_jupyter.model import reconcile_plan
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import Version, ancestors, local_name, local_version, same, under_link
from rclone_jupyter.model.to_come import ToCome

log = logging.getLogger(__name__)

# A download from the bucket never leaves less than this free on the data folder's disk: room for a few saves.
ROOM_LEFT = 8 * 1024 * 1024


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
    to_come: ToCome = dataclasses.field(default_factory=ToCome)  # the start's large files still on their way
    uploading: set[str] = dataclasses.field(default_factory=set)  # the large lane's uploads now (engine/large.py)
    # (name, size) of the objects the last look left in the bucket for want of room (said once each).
    _no_room: set[tuple[str, int]] = dataclasses.field(default_factory=set, init=False)

    def observe(self, changed_here: Callable[[str], bool], *, dry_run: bool = False,
                waiting: frozenset[str] | None = None) -> tuple[
            reconcile_plan.Plan, dict[str, Version], dict[str, Version | None]]:
        """One listing, and the plan for it (nothing changed yet): (plan, listing, the data folder as seen).

        A large file of the start still on its way (`waiting`) is the background restore's: not "added
        elsewhere" (a pull would fetch it twice) and, never in the baseline, never "deleted here". A large
        upload still running (`uploading`) is left alone the same way until the lane has settled it: neither a
        change elsewhere nor a conflict, and, known from before, not "deleted elsewhere" either."""
        waiting = frozenset(self.to_come.waiting()) if waiting is None else waiting
        listing = self.bucket.listing(note_manifest=not dry_run)
        seen: dict[str, Version | None] = {}

        def local(key: str) -> Version | None:
            seen[key] = local_version(self.data_dir, key)
            return seen[key]

        plan = reconcile_plan.plan(self.baseline, listing, local, lambda key: changed_here(local_name(key)),
                                   leave=waiting | self.uploading)
        return plan, listing, seen

    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *, walk: bool = False) -> PushResult:
        """Bring changes made elsewhere in, from one LIST-only listing compared with the baseline.

        `changed_here(name)` says whether this container changed a data folder path since (queued or in
        flight): such a path is never overwritten or deleted here. `walk` (the watcher lost track) first
        compares the whole data folder with the baseline and pushes what differs.
        """
        started = time.monotonic()
        result = PushResult(reconciled=True)
        waiting = self.to_come.into(self.baseline)
        if walk:
            self._push_walk()
        plan, listing, seen = self.observe(changed_here, waiting=waiting)
        self.manifest.merge(changed_here, self.baseline)
        for key, listed in plan.adopt.items():
            self.baseline.adopt(key, listed)
        if plan.disappeared:
            disappeared(self.store, plan.disappeared)
        pull = self._with_room(self.bucket.downloadable(plan.pull, listing), listing)
        if pull:
            # Placed only where the data folder is still as the plan saw it. One object the storage refuses
            # (a 403) is left out, said and shown, never a reason to bring in nothing else.
            placed = self.transfers.download({key: local_name(key) for key in pull},
                                             expect={local_name(key): seen.get(key) for key in pull},
                                             listing=listing,
                                             refused=lambda found: self.bucket.refuse(found, listing))
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

    def _with_room(self, pull: Sequence[str], listing: Mapping[str, Version]) -> list[str]:
        """The objects to download that fit on the data folder's disk, leaving ROOM_LEFT for the user's saves.

        One that does not fit would fail the whole download, and every reconcile after it: nothing changed
        elsewhere would arrive any more. It is left in the bucket, outside the baseline (so nothing here deletes
        it), said once with a WARNING, and downloaded at a later look once there is room.
        """
        if not pull:
            return []
        sizes = {key: listing[key].size if key in listing else 0 for key in pull}
        try:
            room = free_bytes(self.data_dir) - ROOM_LEFT
        except OSError:
            return list(pull)  # the download says what is wrong
        fit, no_room = reconcile_plan.within_room(sizes, room)
        new = [key for key in no_room if (key, sizes[key]) not in self._no_room]
        self._no_room = {(key, sizes[key]) for key in no_room}
        if new:
            log.warning("not downloading %d file(s) (%s) from %s: the data folder's disk has %s free, and a download "
                        "leaves at least %s for your saves: %s. They stay in the bucket and arrive at a later look "
                        "once there is room", len(no_room), human_size(sum(sizes[key] for key in no_room)),
                        self.store.display, human_size(max(room + ROOM_LEFT, 0)), human_size(ROOM_LEFT),
                        ", ".join(sorted(no_room)[:5]) + (", ..." if len(no_room) > 5 else ""))
        return fit

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
