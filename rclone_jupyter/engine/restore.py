"""The start phases: restore the data folder from the bucket folder, then establish the baseline.

One listing (LIST requests only; the pre-flight's when it has just made one), one `rclone copy` (a GET per
object, rclone's modtime from the GET), the manifest's modes and empty folders; then every file the copy wrote
is known without a request.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.push import Pusher, kept_both
from rclone_jupyter.engine.transfers import Transfers
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.local.tree import (cannot_hold, clear_staging, conflict_name, is_empty_folder, md5, walk_folders,
                                       walk_versions)
from rclone_jupyter.logs import human_size
from rclone_jupyter.model import conflict_plan
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.conflict_plan import Winner
from rclone_jupyter.model.known import (LINK_SUFFIX, RealFolders, Version, encode_name, local_name, local_version,
                                        same)
from rclone_jupyter.model.manifest import file_mode
from rclone_jupyter.model.to_come import ToCome
from rclone_jupyter.rclone.store import RcloneStore, missing

log = logging.getLogger(__name__)

Progress = Callable[[int, int, int, int], None]  # (bytes done, bytes in all, files done, files in all)


@dataclasses.dataclass
class Restorer:
    store: RcloneStore  # the bulk copy and the bucket check are rclone's own (not in engine/store.py's Store)
    baseline: Baseline
    data_dir: Path
    bucket: Bucket
    manifest: ManifestSync
    transfers: Transfers
    pusher: Pusher  # establish uploads what only the data folder has
    # The large files left for after JupyterLab has started (engine/background.py).
    to_come: ToCome = dataclasses.field(default_factory=ToCome)
    remote_was_empty: bool = dataclasses.field(default=False, init=False)
    # What the restore brought before JupyterLab started, and what the bucket folder has: (bytes, files) each.
    first: tuple[int, int] = dataclasses.field(default=(0, 0), init=False)
    total: tuple[int, int] = dataclasses.field(default=(0, 0), init=False)
    # The restore's listing and what its copy wrote: the baseline's two sides for establish.
    _listing: dict[str, Version] = dataclasses.field(default_factory=dict, init=False)
    _restored: dict[str, Version] = dataclasses.field(default_factory=dict, init=False)

    def check_bucket(self) -> None:
        """Prove the bucket exists and the credentials work. Raise PersistenceError with what to fix."""
        try:
            self.store.check_bucket()
        except RcloneError as exc:
            if missing(exc):
                raise PersistenceError(self.store.remote.missing_bucket()) from exc
            raise PersistenceError(f"cannot use {self.store.display}: {exc}") from exc

    def restore(self, *, merge: bool = False, on_progress: Progress | None = None,
                large_from: int | None = None) -> None:
        """Copy the bucket folder into the data folder. Never deletes anything locally.

        One LIST of the bucket folder first: it is the bucket side of the baseline (`establish`), it finds the
        objects the data folder cannot hold, and it gives the restore's totals. Then one `rclone copy`.
        `merge` is for a second (third) cloud restored into a data folder an earlier one filled: a file that
        exists on both sides with other content is kept twice (see _merge), never overwritten.
        `large_from`: files larger than this many bytes that the data folder does not have are left `to_come`
        (engine/background.py brings them once JupyterLab runs); the copy takes the rest.
        """
        progress = on_progress or (lambda *_: None)
        log.info("restoring %s from %s", self.data_dir, self.store.display)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        clear_staging(self.data_dir)
        before = walk_versions(self.data_dir)
        listing = self._restore_listing(check_local=bool(before))
        self._listing = listing
        total = sum(v.size for v in listing.values())
        if large_from is not None and not merge:
            self.to_come.expect({key: v for key, v in listing.items() if v.size > large_from and key not in before})
        self.total = (total, len(listing))
        progress(0, total, 0, len(listing))
        result = None
        skipped = self.bucket.skipped
        # Only folders or noise there (no file): still copied, so empty folders come back.
        if listing or (not skipped and not self._folder_is_empty()):
            if merge:
                self._merge(listing)

            def on_stats(stats: dict) -> None:
                progress(int(stats.get("bytes", 0)), total, int(stats.get("transfers", 0)), len(listing))

            try:
                result = self.store.copy_all_into(self.data_dir, only_missing=merge, excludes=tuple(skipped),
                                                  kept=listing,
                                                  on_stats=on_stats, max_size=large_from if self.to_come else None)
            except RcloneError as exc:
                if exc.retryable:
                    raise  # retries exhausted: the supervisor says so
                self._refused_at_start(listing, exc)
        self.remote_was_empty = not listing and not skipped and result is None
        if self.remote_was_empty:
            # Object stores have no real folders: this creates nothing there, but keeps the promise on others.
            self.store.make_folder()
        after = walk_versions(self.data_dir)
        self._restored = {key: v for key, v in after.items() if before.get(key) != v}
        self.manifest.after_restore(self._restored)
        stats = result.stats if result is not None else {}
        later = self.to_come.waiting()
        later_bytes = sum(v.size for v in later.values())
        self.first = (total - later_bytes, len(listing) - len(later))
        progress(self.first[0], total, self.first[1], len(listing))
        log.info("restore from %s %s: %d files, %s in %.1f s%s", self.store.display,
                 "of the small files done" if later else "done", stats.get("transfers", 0),
                 human_size(stats.get("bytes", 0)), result.elapsed if result is not None else 0.0,
                 " (the bucket folder is empty)" if self.remote_was_empty else
                 f"; {len(later)} large file(s) ({human_size(later_bytes)}) follow once JupyterLab runs" if later
                 else "")

    def _refused_at_start(self, listing: dict[str, Version], exc: RcloneError) -> None:
        """The copy failed for good: rclone copied what it could, so what it refused (a 403 on one object, say)
        is tried again alone. Those the storage still refuses are skipped (Bucket.refuse: shown in the status,
        left out of the baseline, so nothing deletes them) and the start goes on. Credentials that may read
        no object at all never get here: the pre-flight's read-back stops the start with the clear error."""
        waiting = self.to_come.waiting()
        absent = {key: local_name(key) for key in listing
                  if key not in waiting and not os.path.lexists(self.data_dir / local_name(key))}
        try:
            self.transfers.download(absent, expect=dict.fromkeys(absent.values()), listing=listing,
                                    refused=lambda found: self.bucket.refuse(found, listing))
        except RcloneError as again:
            raise PersistenceError(f"cannot use {self.store.display}: {again if again.retryable else exc}") from exc
        for key in self.bucket.refused:
            listing.pop(key, None)

    def _restore_listing(self, check_local: bool = False) -> dict[str, Version]:
        """The bucket folder's files from LIST requests alone; a missing bucket is the clear error.

        Objects the data folder cannot hold are left out and noted in `skipped`: bad names, and objects below
        a link (a link object `x.rclonelink` beside objects `x/...`, or, with `check_local`, a link already in
        the data folder on the way): restoring them would write through the link, outside the data folder.
        """
        try:
            files = self.bucket.files(missing_ok=False)
        except RcloneError as exc:
            if exc.retryable:
                raise
            self.check_bucket()  # a missing bucket or refused credentials: the clear error
            if not missing(exc):
                raise PersistenceError(f"cannot use {self.store.display}: {exc}") from exc
            return {}  # the bucket is there, the folder is not: nothing to restore
        skip = cannot_hold(files)
        if check_local:
            folders = RealFolders(self.data_dir)  # each folder looked at once, not once per object in it
            for name in files:
                if name not in skip and folders.under_link(local_name(name)):
                    skip[name] = "a link in the data folder is on its way"
        self.bucket.skip(skip)
        for name in skip:  # taken out in place: a million objects are not copied
            del files[name]
        return files

    def _folder_is_empty(self) -> bool:
        """An empty listing: is the folder really empty, or does it hold only noise and heartbeats (not new)?"""
        try:
            return self.store.is_empty()
        except RcloneError as exc:
            raise PersistenceError(f"cannot use {self.store.display}: {exc}") from exc

    def establish(self) -> None:
        """After every restore: record the baseline, and upload what only the data folder has.

        Every file this engine's restore wrote, untouched since, is the bucket's version: known with no
        request. A file that was here before the restore (a Docker volume, another cloud's restore, the
        example notebooks) is compared with the bucket's (a HEAD each) and uploaded where it differs; a
        difference with the bucket's own version is a conflict, and both are kept.
        """
        listing = self._listing
        here = walk_versions(self.data_dir, on_unsaveable=self.pusher.cannot_save)
        check = []
        for key, listed in listing.items():
            now = here.get(key)
            if now is None or key in self.baseline:  # known already: prefer_local looked at it
                continue
            if self._restored.get(key) == now:
                self.baseline.record(key, now, listed)
            else:
                check.append(key)
        if check:
            theirs = self.bucket.versions(check, self.baseline)
            for key in check:
                if same(theirs.get(key), here[key]):
                    self.baseline.record(key, here[key], listing[key])
        upload = [key for key in here if key not in self.baseline or not same(here[key], self.baseline[key].version)]
        self._restored = {}
        self._listing = {}  # the baseline holds what is needed of it now: about 100 bytes per object less
        manifest = self.manifest.manifest
        folders = RealFolders(self.data_dir)
        for key in here:
            manifest.note(key, file_mode(self.data_dir, key, folders))
        for rel in walk_folders(self.data_dir, "") - {""}:
            manifest.keep_folder(encode_name(rel), is_empty_folder(self.data_dir / rel))
        if upload:
            log.info("%d file(s) in %s are not in %s yet, or differ; uploading them", len(upload), self.data_dir,
                     self.store.display)
            self.pusher.push_paths(frozenset(local_name(key) for key in upload))
        self.manifest.write()

    def prefer_local(self) -> None:
        """For a cloud merged in after the first (README, 'Several clouds'): the data folder holds the winner
        of every disagreement and the loser as a conflict copy, so its differing files overwrite the bucket's."""
        listing = self._listing
        here = walk_versions(self.data_dir)
        differ = [key for key in listing if key in here and self._restored.get(key) != here[key]]
        if differ:
            theirs = self.bucket.versions(differ, self.baseline)
            for key in differ:
                if key in theirs:
                    self.baseline.record(key, theirs[key], listing[key])

    def _merge(self, theirs_listed: dict[str, Version]) -> None:
        """Before a merging restore: keep both versions of every file that differs here and in the bucket.

        Same rule as any conflict (README): the newer version keeps the name, the other is kept beside it
        as name.conflictN.ext; equal times keep the local one at the name. The restore that follows copies only
        the files missing here, so nothing local is overwritten.
        """
        candidates = [key for key in theirs_listed if local_version(self.data_dir, key) is not None]
        if not candidates:
            return
        theirs = self.bucket.versions(candidates, self.baseline)
        differ = [key for key in candidates if key in theirs
                  and not same(local_version(self.data_dir, key), theirs[key])]
        if differ:
            differ = self._differ_in_content(differ)
        taken = set(theirs_listed)
        for key in differ:
            rel = local_name(key)
            aside = conflict_name(rel, lambda c: c in taken or os.path.lexists(self.data_dir / c))
            taken.add(aside)
            step = conflict_plan.keep_both(key, rel, local_version(self.data_dir, key), theirs[key], aside)
            if step.winner is Winner.BUCKET:
                os.rename(self.data_dir / rel, self.data_dir / aside)  # the restore that follows brings theirs
            elif step.winner is Winner.HERE:
                self.transfers.download({key: aside}, expect={aside: None})
            kept_both(step, self.store.display, verb="differs")

    def _differ_in_content(self, keys: list[str]) -> list[str]:
        """Of files whose size or time differ, those whose content differs too (same MD5 = same file)."""
        same_size = [k for k in keys if not k.endswith(LINK_SUFFIX)]
        if not same_size:
            return keys
        remote_md5 = self.store.hashes(same_size)
        identical = {k for k in same_size if remote_md5.get(k) and remote_md5[k] == md5(self.data_dir / k)}
        return [k for k in keys if k not in identical]
