"""The push: make the bucket hold what the data folder holds for the paths the watcher reported.

Each name is checked against the baseline (one HEAD, or one LIST per new folder for a burst of new names): an
object changed in the bucket behind our back is a conflict, and both versions are kept. Deletes remove only
the version this container knew.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.keeper import Keeper
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.store import Store
from rclone_jupyter.engine.transfers import PartlyPushed, Transfers
from rclone_jupyter.local.tree import conflict_name, is_empty_folder, walk_folders, walk_versions
from rclone_jupyter.model import conflict_plan, push_plan
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.conflict_plan import Winner
from rclone_jupyter.model.known import (LINK_SUFFIX, RealFolders, Version, encode_name, key_and_version, keys_for,
                                        local_name, local_version, not_an_object, shown, under_link, unsaveable)
from rclone_jupyter.model.manifest import file_mode, permissions
from rclone_jupyter.model.to_come import ToCome

log = logging.getLogger(__name__)


@dataclasses.dataclass
class PushResult:
    uploaded: int = 0
    deleted: int = 0
    skipped: int = 0
    conflicts: int = 0
    pulled: int = 0
    bytes: int = 0
    seconds: float = 0.0
    reconciled: bool = False


@dataclasses.dataclass
class PushPlan:
    """What a push will do (model/push_plan.py), with what it saw: the data folder's versions, the names it
    did not need to ask about, the folders whose manifest entry may change."""

    local: dict[str, Version | None]
    skipped: int
    uploads: push_plan.UploadPlan
    deletes: push_plan.DeletePlan
    folders: set[str]
    theirs: dict[str, Version] = dataclasses.field(default_factory=dict)  # the bucket's versions it asked for
    # The modes (manifest.permissions) of the names it saw by path, from the same look as their versions.
    modes: dict[str, int | None] = dataclasses.field(default_factory=dict)

    def lines(self) -> list[str]:
        """The plan as a person reads it (`sync --once --dry-run`)."""
        out = [f"upload {local_name(k)}" for k in self.uploads.upload]
        out += [f"delete {local_name(k)} from the bucket" for k in self.deletes.delete]
        out += [f"bring back {local_name(k)} (changed in the bucket since)" for k in self.deletes.bring_back]
        out += [f"keep both versions of {local_name(k)} (changed here and in the bucket)"
                for k in sorted(self.uploads.conflicts)]
        return out


def kept_both(step: conflict_plan.KeepBoth, display: str, *, verb: str = "changed") -> None:
    """The one log line of a kept conflict ('changed here and in', or 'differs here and in' at a merge)."""
    if step.winner is Winner.ONLY_BUCKET:
        return
    other = "this one" if step.winner is Winner.BUCKET else "the bucket's"
    log.warning("%s %s here and in %s; the newer version (%s) keeps the name, %s is kept as %s", step.rel, verb,
                display, step.winner.value, other, step.aside)


def not_deleting(store: Store, changed: list[str]) -> None:
    """The delete that was not done: the bucket's version is newer work than the delete."""
    log.warning("not deleting %s from %s: changed there since the last sync (newer work than the delete); it "
                "comes back here", ", ".join(changed[:5]), store.display)


@dataclasses.dataclass
class Pusher:
    store: Store
    baseline: Baseline
    data_dir: Path
    bucket: Bucket
    manifest: ManifestSync
    transfers: Transfers
    keeper: Keeper  # what a push deletes or uploads over is kept in the trash first (engine/keeper.py)
    # The large files of the start still on their way (engine/background.py): never in the baseline before
    # they are placed, so no delete can touch them; a name the user writes first becomes this push's.
    to_come: ToCome = dataclasses.field(default_factory=ToCome)
    # Data folder paths that cannot be objects (known.unsaveable, known.not_an_object): never uploaded, shown
    # in the status as not saved until they go. {path: why}
    not_saved: dict[str, str] = dataclasses.field(default_factory=dict)
    # Those of not_saved whose check the storage refused (observe): saved once the check goes through.
    hidden: set[str] = dataclasses.field(default_factory=set)

    def cannot_save(self, rel: str, why: str) -> None:
        """A data folder path that cannot be saved: one WARNING, then listed in the status while it is there."""
        if rel not in self.not_saved:
            log.warning("not saving %s to %s: %s. Everything else is saved; `rclone-jupyter status` lists it",
                        shown(rel), self.store.display, why)
        self.not_saved[rel] = why

    def gone_here(self, rel: str) -> None:
        """A data folder path is gone: neither it nor anything below it is unsaved any more."""
        prefix = rel + "/"
        for name in [n for n in self.not_saved if n == rel or n.startswith(prefix)]:
            del self.not_saved[name]

    def hidden_by_storage(self, rel: str, why: str) -> None:
        """The bucket's object of this path's name is one the storage refuses this container (a 403 on its check,
        or on its download where a KMS key lets the HEAD through): saving over it could lose it. Not saved, and
        looked at again at the path's next change."""
        self.cannot_save(rel, f"the storage refuses this container the object of that name in the bucket ({why}), "
                              f"and saving over it could lose it")
        self.hidden.add(rel)

    def not_saved_shown(self, limit: int = 50) -> dict[str, str]:
        """What the status lists as not saved: {path as shown: why}, the first `limit` by name."""
        return {shown(rel): why for rel, why in sorted(self.not_saved.items())[:limit]}

    def observe(self, paths: Iterable[str]) -> PushPlan:
        """Look at the data folder, the baseline and the bucket for these paths, and decide what to do. Changes
        nothing (a HEAD or a LIST is all it sends)."""
        real = RealFolders(self.data_dir)  # one look at each folder on the way, for every name of this push
        modes: dict[str, int | None] = {}
        local, deletes, folders = self._split(paths, real, modes)
        checked = push_plan.to_check(local, self.baseline)
        refused: dict[str, str] = {}
        theirs = self.bucket.versions(checked, self.baseline, refused=refused.update) if checked else {}
        for key, why in refused.items():
            # The storage will not show the object of that name (a 403): uploading over what cannot be seen
            # could lose it. Not saved, said and listed; the others of this push go on.
            self.hidden_by_storage(local_name(key), why)
            del local[key]
        checked = [key for key in checked if key not in refused]
        if self.hidden:
            for key in checked:  # refused before, seen now (the policy changed): saved as any file
                if local_name(key) in self.hidden:
                    self.hidden.discard(local_name(key))
                    self.not_saved.pop(local_name(key), None)
        # What our own cut-short uploads landed is known as ours (engine/transfers.py, cut_short).
        known = self.transfers.known_with_own(local, theirs)
        upload = push_plan.plan_uploads({key: local[key] for key in checked}, known, theirs)
        doomed = sorted(self.known_under(deletes))
        theirs_doomed = self.bucket.versions(doomed, self.baseline) if doomed else {}
        delete = push_plan.plan_deletes(doomed, self.transfers.known_with_own({}, theirs_doomed), theirs_doomed)
        return PushPlan(local, len(local) - len(checked), upload, delete, folders, theirs, modes)

    def push_paths(self, paths: Iterable[str]) -> PushResult:
        started = time.monotonic()
        self.to_come.into(self.baseline)
        plan = self.observe(paths)
        result = self.execute(plan)
        result.seconds = time.monotonic() - started
        return result

    def execute(self, plan: PushPlan) -> PushResult:
        """Carry out a plan from `observe`: upload, delete, bring back, keep both; record what landed."""
        result = PushResult(skipped=plan.skipped)
        local, folders = plan.local, set(plan.folders)
        replaced_modes = {key: self.manifest.manifest.wanted(key) for key in local}  # before the new ones
        # Written here before the bucket's version arrived: this push owns the name now (its check found the
        # bucket's object, unknown here: both versions are kept), and the background restore leaves it alone.
        self.to_come.claim(local)
        real = RealFolders(self.data_dir)
        for key in local:  # a chmod alone (no new content) changes only the manifest
            mode = plan.modes[key] if key in plan.modes else file_mode(self.data_dir, key, real)
            self.manifest.manifest.note(key, mode)
        for key, version in plan.uploads.record.items():
            # Already there as it is here: our own upload that landed in a run that failed later.
            self.baseline.record(key, version)
        uploads = list(plan.uploads.upload)
        partly: PartlyPushed | None = None
        if uploads:
            self.keeper.before_overwrite({key: replaced_modes[key] for key in uploads if key in plan.theirs})
            try:
                self.transfers.upload(uploads, local)
            except PartlyPushed as exc:
                partly = exc  # the rest of the batch (deletes, conflicts) still runs; these stay pending
                uploads = [key for key in uploads if local_name(key) not in exc.paths]
            result.bytes = sum(local[key].size for key in uploads)
            result.uploaded = len(uploads)
        deletes = plan.deletes
        self.baseline.forget(deletes.forget)
        self.transfers.settled(deletes.forget)
        if deletes.bring_back:
            # Delete only the version we knew. One changed in the bucket meanwhile (another machine, a second
            # container on this folder) is newer work than our delete: it comes back here.
            not_deleting(self.store, deletes.bring_back)
            result.pulled += len(self.transfers.download({key: local_name(key) for key in deletes.bring_back},
                                                         expect={local_name(key): None for key in deletes.bring_back}))
        if deletes.delete:
            # Each deleted object moves into the trash (engine/keeper.py), or is deleted when keeping is off.
            self.keeper.delete({key: self.manifest.manifest.wanted(key) for key in deletes.delete})
            self.baseline.forget(deletes.delete)
            self.transfers.settled(deletes.delete)  # only now: a delete that failed is tried again
            result.deleted = len(deletes.delete)
            for key in deletes.delete:
                self.manifest.manifest.forget(key)
            # A folder emptied by these deletions stays a folder here: keep it in the bucket too.
            folders |= {os.path.dirname(local_name(key)) for key in deletes.delete} - {""}
        self._sync_folders(folders)
        self.manifest.write()
        conflicts = plan.uploads.conflicts
        if conflicts:
            result.conflicts = len(conflicts)
            log.warning("%d file(s) changed in %s since the last sync and here too (%s); keeping both versions",
                        len(conflicts), self.store.display, ", ".join(sorted(conflicts)[:5]))
            self.keep_both(conflicts)
        if partly is not None:
            raise partly
        return result

    def keep_both(self, conflicts: dict[str, Version]) -> None:
        """A name changed here and in the bucket: the newer version keeps it, the other is kept beside it as
        name.conflictN.ext, on both sides (model/conflict_plan.py).

        The bucket's version may be one the storage lets this container see but not read (a KMS key it may not
        use): then both cannot be kept, and ours is not saved over it (hidden_by_storage); the other names go on.
        """
        refused: dict[str, str] = {}
        for key, theirs in sorted(conflicts.items()):
            mine = local_version(self.data_dir, key)
            rel = local_name(key)
            suffix = LINK_SUFFIX if key.endswith(LINK_SUFFIX) else ""
            aside = conflict_name(rel, lambda c: os.path.lexists(self.data_dir / c)
                                  or (encode_name(c) + suffix) in self.baseline
                                  # free in the bucket now too (one HEAD): another machine may have made that
                                  # name since the last look, and uploading over it would lose its object
                                  or bool(self.bucket.versions([encode_name(c) + suffix], self.baseline))
                                  ) if mine is not None else ""
            step = conflict_plan.keep_both(key, rel, mine, theirs, aside)
            aside_key = encode_name(aside) + suffix
            if step.winner is Winner.ONLY_BUCKET:  # gone here meanwhile: the bucket's version is the only one
                self.transfers.download({key: rel}, expect={rel: None}, refused=refused.update)
                self._unreadable(key, theirs, refused)
            elif step.winner is Winner.BUCKET:
                # Theirs is newer: ours moves aside (uploaded under its new name), theirs takes the name.
                os.rename(self.data_dir / rel, self.data_dir / aside)
                self.transfers.upload_one(aside_key)
                self.transfers.download({key: rel}, expect={rel: None}, refused=refused.update)
                self._unreadable(key, theirs, refused)
            else:
                # Ours is newer (or as new): theirs is kept beside it, then ours replaces it in the bucket.
                self.transfers.download({key: aside}, expect={aside: None}, refused=refused.update)
                if key in refused:  # theirs cannot be kept: ours does not replace it
                    self.hidden_by_storage(rel, refused[key])
                    continue
                self.transfers.upload_one(aside_key)
                self.baseline.record(key, theirs)
                self.transfers.upload([key], {key: mine})
            kept_both(step, self.store.display)

    def _unreadable(self, key: str, theirs: Version, refused: dict[str, str]) -> None:
        """The bucket's version of a conflict could not be brought here (refused): it stays there, listed as
        skipped, and is not asked for again until it changes (Bucket.refuse)."""
        if key in refused:
            self.bucket.refuse({key: refused[key]}, {key: theirs})

    def delete_known(self, keys: list[str]) -> None:
        """Delete exactly these objects from the bucket folder and forget them."""
        self.store.delete(keys)
        self.baseline.forget(keys)

    def _sync_folders(self, folders: set[str]) -> None:
        """Keep each of these folders in the manifest while it is an empty folder here; drop it when it is not
        (a folder with files comes back with them; a deleted folder must not come back)."""
        manifest = self.manifest.manifest
        for rel in folders:
            empty = not under_link(self.data_dir, rel) and is_empty_folder(self.data_dir / rel)
            manifest.keep_folder(encode_name(rel), empty)
            if not os.path.lexists(self.data_dir / rel):
                prefix = encode_name(rel) + "/"
                for name in [f for f in manifest.folders if f.startswith(prefix)]:
                    manifest.keep_folder(name, False)

    def _split(self, paths: Iterable[str], real: RealFolders, modes: dict[str, int | None]
               ) -> tuple[dict[str, Version | None], list[str], set[str]]:
        """Split changed paths into objects to upload with their versions here (folders expanded), paths
        confirmed absent locally, and folders whose marker may need to be made or removed. `modes` gets the
        mode (manifest.permissions) of each object looked at by its path."""
        uploads: dict[str, Version | None] = {}
        deletes: list[str] = []
        folders: set[str] = set()
        walked: list[str] = []
        root = str(self.data_dir)  # joined as text: a Path object per path of a burst cost more than its lstat
        for rel in sorted(paths):
            if why := not_an_object(root, rel):  # never an object: listed as not saved while it is here
                self.cannot_save(rel, why)
                continue
            if unsaveable(rel):  # gone
                self.gone_here(rel)
                continue
            if real.under_link(rel):
                # A folder on the way became a link (or a file): what is there now is outside the data folder.
                deletes.append(rel)
                continue
            found = key_and_version(root, rel)  # the folders on the way are real (above)
            if found is not None:
                uploads[found.key] = found.version
                modes[found.key] = permissions(found.st_mode)
                deletes.append(rel)  # the other kind of the same name (a file replaced by a link, or back)
                continue
            full = self.data_dir / rel
            if full.is_dir() and not full.is_symlink():
                walked.append(rel)
                # Known files under a folder of this name that are gone now (a folder replaced or moved): the
                # push expands this with known_under, which keeps only objects absent here.
                deletes.append(rel)
            elif not os.path.lexists(full):
                self.gone_here(rel)
                deletes.append(rel)
                folders.add(rel)  # if it was a kept empty folder, it goes from the manifest
        # Folders last: in a burst into new folders, their files are changed paths of this push too, looked at
        # above already; the walk adds the others (a folder moved in, files written before its watch).
        for rel in walked:
            uploads.update(walk_versions(self.data_dir, rel, self.cannot_save, seen=uploads))
            folders.update(walk_folders(self.data_dir, rel))
        return dict(sorted(uploads.items())), deletes, folders

    def still_as_known(self, keys: list[str]) -> tuple[list[str], list[str]]:
        """Split known objects into those the bucket holds as we knew them and those changed there since.

        Objects already gone from the bucket are dropped from the baseline and from both lists.
        """
        plan = push_plan.plan_deletes(keys, self.baseline, self.bucket.versions(keys, self.baseline) if keys else {})
        self.baseline.forget(plan.forget)
        return plan.delete, plan.bring_back

    def known_under(self, rels: Iterable[str]) -> set[str]:
        """The objects at, as a link at, or under each path, still absent locally (checked again, now), that
        the bucket may hold: known ones, and those of uploads whose landing is unknown (Transfers.attempts)."""
        attempted = self.transfers.attempts
        out: set[str] = set()
        folders: set[str] = set()
        for rel in rels:
            for key in keys_for(rel):
                if (key in self.baseline or key in attempted) and local_version(self.data_dir, key) is None:
                    out.add(key)
            folders.add(encode_name(rel.rstrip("/")))
        # One pass over `known` for all of them (a burst of N new files is N paths here: not N passes).
        for key in itertools.chain(self.baseline, attempted):
            if _below_any(key, folders) and local_version(self.data_dir, key) is None:
                out.add(key)
        return out


def _below_any(key: str, folders: set[str]) -> bool:
    """True if a folder above `key` is one of `folders`."""
    end = key.find("/")
    while end != -1:
        if key[:end] in folders:
            return True
        end = key.find("/", end + 1)
    return False
