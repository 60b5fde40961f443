"""The push phase: make the bucket hold what the data folder holds for the paths the watcher reported.

Each name is checked against `known` (one HEAD, or one LIST per new folder for a burst of new names): an object
changed in the bucket behind our back is a conflict, and both versions are kept. Deletes remove only the
version this container knew. Mixed into Engine (engine/core.py), whose state and transfer calls it uses.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterable

from rclone_jupyter.model.changes import Batch
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.model.known import (LINK_SUFFIX, MTIME_SLACK_NS, Known, Version, encode_name, key_of, keys_for,
                                  local_name, local_version, same, under_link)
from rclone_jupyter.model.manifest import file_mode
from rclone_jupyter.local.tree import conflict_name, is_empty_folder, walk_folders, walk_versions

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


class PartlyPushed(RcloneError):
    """Some files of a push were refused; the others landed. `paths`: the data folder paths still unsaved."""

    def __init__(self, message: str, paths: set[str]):
        super().__init__(message, exit_code=None, retryable=True)
        self.paths = paths



class PushPhase:
    def push(self, batch: Batch) -> PushResult:
        """Make the bucket hold what the data folder holds for the paths in `batch`."""
        if self.push_mode == "bisync":
            return self.bisync.push(batch)
        self._take_arrivals()
        if batch.overflow:
            started = time.monotonic()
            self.reconcile(changed_here=lambda _key: True, walk=True)
            return PushResult(reconciled=True, seconds=time.monotonic() - started)
        return self._push_paths(batch.paths)

    def _push_paths(self, paths: Iterable[str]) -> PushResult:
        started = time.monotonic()
        result = PushResult()
        uploads, deletes, folders = self._plan(paths)
        # Written here before the bucket's version arrived: this push owns the name now (both versions are kept
        # as in any conflict), and the background restore leaves it alone.
        self.to_come.claim(uploads)
        for key in uploads:  # a chmod alone (no new content) changes only the manifest
            self.manifest.note(key, file_mode(self.data_dir, key))
        local = {key: local_version(self.data_dir, key) for key in uploads}
        # Already in the bucket as it is here (e.g. just pulled from it): nothing to send.
        uploads = [key for key in uploads if local[key] is not None
                   and not (key in self.known and same(local[key], self.known[key].version))]
        result.skipped = len(local) - len(uploads)
        conflicts: dict[str, Version] = {}
        if uploads:
            remote_now = self._stat_remote(uploads)
            for key in uploads:
                theirs = remote_now.get(key)
                known = self.known.get(key)
                if theirs is not None and same(theirs, local[key]):
                    # Already there as it is here: our own upload that landed in a run that failed later.
                    self.known[key] = Known(theirs[0], theirs[1], None)
                elif theirs is not None and (known is None or not same(theirs, known.version)):
                    conflicts[key] = theirs  # changed (or created) in the bucket since we last looked
            uploads = [key for key in uploads if key not in conflicts and not (
                key in self.known and same(local[key], self.known[key].version))]
        partly: PartlyPushed | None = None
        if uploads:
            try:
                self._upload(uploads, local)
            except PartlyPushed as exc:
                partly = exc  # the rest of the batch (deletes, conflicts) still runs; these stay pending
                uploads = [key for key in uploads if local_name(key) not in exc.paths]
            result.bytes = sum(local[key][0] for key in uploads)
            result.uploaded = len(uploads)
        if deletes:
            doomed = sorted(self._known_under(deletes))
            if doomed:
                # Delete only the version we knew. One changed in the bucket meanwhile (another machine, a second
                # container on this folder) is newer work than our delete: it comes back here.
                doomed, changed = self._still_as_known(doomed)
                if changed:
                    log.warning("WARNING: not deleting %s from %s: changed there since the last sync (newer work "
                                "than the delete); it comes back here", ", ".join(changed[:5]), self.remote.display)
                    result.pulled += len(self._download({key: local_name(key) for key in changed},
                                                         expect={local_name(key): None for key in changed}))
            if doomed:
                self._delete_known(doomed)
                result.deleted = len(doomed)
                for key in doomed:
                    self.manifest.forget(key)
                # A folder emptied by these deletions stays a folder here: keep it in the bucket too.
                folders |= {os.path.dirname(local_name(key)) for key in doomed} - {""}
        self._sync_folders(folders)
        self._write_manifest()
        if conflicts:
            result.conflicts = len(conflicts)
            log.warning("%d file(s) changed in %s since the last sync and here too (%s); keeping both versions",
                        len(conflicts), self.remote.display, ", ".join(sorted(conflicts)[:5]))
            self._keep_both(conflicts)
        if partly is not None:
            raise partly
        result.seconds = time.monotonic() - started
        return result

    def _keep_both(self, conflicts: dict[str, Version]) -> None:
        """A name changed here and in the bucket: the newer version keeps it, the other is kept beside it as
        name.conflictN.ext, on both sides."""
        for key, theirs in sorted(conflicts.items()):
            mine = local_version(self.data_dir, key)
            rel = local_name(key)
            if mine is None:  # gone here meanwhile: the bucket's version is the only one
                self._download({key: rel}, expect={rel: None})
                continue
            suffix = LINK_SUFFIX if key.endswith(LINK_SUFFIX) else ""
            name = conflict_name(rel, lambda c: os.path.lexists(self.data_dir / c)
                                  or (encode_name(c) + suffix) in self.known)
            name_key = encode_name(name) + suffix
            if theirs[1] > mine[1] + MTIME_SLACK_NS:
                # Theirs is newer: ours moves aside (uploaded under its new name), theirs takes the name.
                os.rename(self.data_dir / rel, self.data_dir / name)
                self._upload([name_key], {name_key: local_version(self.data_dir, name_key)})
                self._download({key: rel}, expect={rel: None})
                log.warning("WARNING: %s changed here and in %s; the newer version (the bucket's) keeps the name, "
                            "this one is kept as %s", rel, self.remote.display, name)
            else:
                # Ours is newer (or as new): theirs is kept beside it, then ours replaces it in the bucket.
                self._download({key: name}, expect={name: None})
                self._upload([name_key], {name_key: local_version(self.data_dir, name_key)})
                self.known[key] = Known(theirs[0], theirs[1], None)
                self._upload([key], {key: mine})
                log.warning("WARNING: %s changed here and in %s; the newer version (this one) keeps the name, "
                            "the bucket's is kept as %s", rel, self.remote.display, name)

    def _sync_folders(self, folders: set[str]) -> None:
        """Keep each of these folders in the manifest while it is an empty folder here; drop it when it is not
        (a folder with files comes back with them; a deleted folder must not come back)."""
        for rel in folders:
            empty = not under_link(self.data_dir, rel) and is_empty_folder(self.data_dir / rel)
            self.manifest.keep_folder(encode_name(rel), empty)
            if not os.path.lexists(self.data_dir / rel):
                prefix = encode_name(rel) + "/"
                for name in [f for f in self.manifest.folders if f.startswith(prefix)]:
                    self.manifest.keep_folder(name, False)

    def _plan(self, paths: Iterable[str]) -> tuple[list[str], list[str], set[str]]:
        """Split changed paths into objects to upload (folders expanded), paths confirmed absent locally, and
        folders whose marker may need to be made or removed."""
        uploads: set[str] = set()
        deletes: list[str] = []
        folders: set[str] = set()
        for rel in sorted(paths):
            if under_link(self.data_dir, rel):
                # A folder on the way became a link (or a file): what is there now is outside the data folder.
                deletes.append(rel)
                continue
            full = self.data_dir / rel
            key = key_of(self.data_dir, rel)
            if key is not None:
                uploads.add(key)
                deletes.append(rel)  # the other kind of the same name (a file replaced by a link, or back)
            elif full.is_dir() and not full.is_symlink():
                uploads.update(walk_versions(self.data_dir, rel))
                folders.update(walk_folders(self.data_dir, rel))
                # Known files under a folder of this name that are gone now (a folder replaced or moved): the
                # push expands this with _known_under, which keeps only objects absent here.
                deletes.append(rel)
            elif not os.path.lexists(full):
                deletes.append(rel)
                folders.add(rel)  # if it was a kept empty folder, it goes from the manifest
        return sorted(uploads), deletes, folders

    def _still_as_known(self, keys: list[str]) -> tuple[list[str], list[str]]:
        """Split known objects into those the bucket holds as we knew them and those changed there since.

        Objects already gone from the bucket are dropped from `known` and from both lists.
        """
        remote_now = self._stat_remote(keys) if keys else {}
        unchanged: list[str] = []
        changed: list[str] = []
        for key in keys:
            if key not in remote_now:
                self.known.pop(key, None)
            elif same(remote_now[key], self.known[key].version):
                unchanged.append(key)
            else:
                changed.append(key)
        return unchanged, changed

    def _known_under(self, rels: Iterable[str]) -> set[str]:
        """The known objects at, as a link at, or under each path, still absent locally (checked again, now)."""
        out: set[str] = set()
        for rel in rels:
            for key in keys_for(rel):
                if key in self.known and local_version(self.data_dir, key) is None:
                    out.add(key)
            prefix = encode_name(rel.rstrip("/")) + "/"
            for key in self.known:
                if key.startswith(prefix) and local_version(self.data_dir, key) is None:
                    out.add(key)
        return out
