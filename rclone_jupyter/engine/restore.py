"""The start phases: restore the data folder from the bucket folder, then establish the baseline.

One listing (LIST requests only; the pre-flight's when it has just made one), one `rclone copy` (a GET per
object, rclone's modtime from the GET), the manifest's modes and empty folders; then every file the copy wrote
is known without a request. Mixed into Engine (engine/core.py), whose state and transfer calls it uses.
"""

from __future__ import annotations

import json
import logging
import os

from rclone_jupyter.rclone import commands
from rclone_jupyter.model.changes import Batch
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.model.known import (LINK_SUFFIX, MTIME_SLACK_NS, Known, Version, encode_name, entry_version,
                                  local_name, local_version, same, under_link)
from rclone_jupyter.logs import human_size
from rclone_jupyter.model.manifest import Manifest, file_mode
from rclone_jupyter.rclone.runner import EXIT_DIR_NOT_FOUND
from rclone_jupyter.local.tree import (below_link, clear_staging, conflict_name, is_empty_folder, md5, unrepresentable,
                                 walk_folders, walk_versions)

log = logging.getLogger(__name__)


class RestorePhase:
    def check_bucket(self) -> None:
        """Prove the bucket exists and the credentials work. Raise PersistenceError with what to fix."""
        variable = self.remote.display
        try:
            self._retrying(lambda: self._run(commands.list_top(self.remote.bucket_path()), "checking the bucket",
                                             quiet=True), "checking the bucket")
        except RcloneError as exc:
            if exc.rclone_exit_code == EXIT_DIR_NOT_FOUND:
                raise PersistenceError(
                    f"the bucket {self.remote.bucket!r} ({variable}) does not exist or these credentials cannot "
                    "see it. Create it, or fix the bucket name."
                ) from exc
            raise PersistenceError(f"cannot use {variable}: {exc}") from exc

    def restore(self, *, merge: bool = False, large_from: int | None = None) -> None:
        """Copy the bucket folder into the data folder. Never deletes anything locally.

        One LIST of the bucket folder first: it is the bucket side of the baseline (`establish`), it finds the
        objects the data folder cannot hold, and it gives the restore's totals. Then one `rclone copy`.
        `merge` is for a second (third) cloud restored into a data folder an earlier one filled: a file that
        exists on both sides with other content is kept twice (see _merge), never overwritten.
        `large_from`: files larger than this many bytes that the data folder does not have are left `to_come`
        (engine/background.py brings them once JupyterLab runs); the restore copies the rest.
        """
        log.info("restoring %s from %s", self.data_dir, self.remote.display)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        clear_staging(self.data_dir)
        before = walk_versions(self.data_dir)
        listing = self._restore_listing(check_local=bool(before))
        self._listing_at_restore = listing
        total = sum(size for size, _ in listing.values())
        if large_from is not None and not merge:
            self.to_come.expect({key: v for key, v in listing.items() if v[0] > large_from and key not in before})
        self.restore_total = (total, len(listing))
        self._progress(0, total, 0, len(listing))
        result = None
        # Only folders or noise there (no file): still copied, so empty folders come back.
        if listing or (not self.skipped and not self._folder_is_empty()):
            if merge:
                self._merge(listing)
            argv = commands.restore(self.remote.path(), self.data_dir, only_missing=merge,
                                    excludes=tuple(self.skipped), max_size=large_from if self.to_come else None)

            def on_stats(stats: dict) -> None:
                self._progress(int(stats.get("bytes", 0)), total, int(stats.get("transfers", 0)), len(listing))

            try:
                result = self._retrying(lambda: self._run(argv, "restore", on_stats=on_stats), "restore")
            except RcloneError as exc:
                if exc.retryable:
                    raise  # retries exhausted: the supervisor says so
                raise PersistenceError(f"cannot use {self.remote.display}: {exc}") from exc
        self.remote_was_empty = not listing and not self.skipped and result is None
        if self.remote_was_empty:
            # Object stores have no real folders: this creates nothing there, but keeps the promise on others.
            self._retrying(lambda: self._run(commands.mkdir(self.remote.path()), "creating the bucket folder",
                                             quiet=True), "creating the bucket folder")
        after = walk_versions(self.data_dir)
        self._restored = {key: v for key, v in after.items() if before.get(key) != v}
        if self._manifest_listed is not None:
            modes, folders = Manifest.load(self._read_manifest())
            self.manifest.modes.update(modes)
            self.manifest.folders |= folders
            for key in self._restored:
                self.manifest.apply(self.data_dir, key)
            self._make_folders(folders)
        stats = result.stats if result is not None else {}
        later = self.to_come.waiting()
        self.restore_first = (total - sum(size for size, _ in later.values()), len(listing) - len(later))
        self._progress(*self.restore_first[:1], total, self.restore_first[1], len(listing))
        log.info("restore from %s %s: %d files, %s in %.1f s%s", self.remote.display,
                 "done" if not later else "of the small files done", stats.get("transfers", 0),
                 human_size(stats.get("bytes", 0)), result.elapsed if result is not None else 0.0,
                 " (the bucket folder is empty)" if self.remote_was_empty else
                 f"; {len(later)} large file(s) ({human_size(sum(v[0] for v in later.values()))}) follow once "
                 "JupyterLab runs" if later else "")

    def _progress(self, done: int, total: int, files_done: int, files_total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(done, total, files_done, files_total)

    def _restore_listing(self, check_local: bool = False) -> dict[str, Version]:
        """The bucket folder's files from LIST requests alone; a missing bucket is the clear error.

        Objects the data folder cannot hold are left out and noted in `skipped`: bad names, and objects below
        a link (a link object `x.rclonelink` beside objects `x/...`, or, with `check_local`, a link already in
        the data folder on the way): restoring them would write through the link, outside the data folder.
        """
        try:
            entries = self._listing_entries()
        except RcloneError as exc:
            if exc.retryable:
                raise
            self.check_bucket()  # a missing bucket or refused credentials: the clear error
            if exc.rclone_exit_code != EXIT_DIR_NOT_FOUND:
                raise PersistenceError(f"cannot use {self.remote.display}: {exc}") from exc
            return {}  # the bucket is there, the folder is not: nothing to restore
        listing = {}
        entries = self._without_manifest(entries)
        links = {e["Path"][: -len(LINK_SUFFIX)] for e in entries if e["Path"].endswith(LINK_SUFFIX)}
        for entry in entries:
            why = unrepresentable(entry["Path"]) or below_link(entry["Path"], links)
            if not why and check_local and under_link(self.data_dir, local_name(entry["Path"])):
                why = "a link in the data folder is on its way"
            if why:
                if entry["Path"] not in self.skipped:
                    log.warning("WARNING: not restoring %r from %s: %s. It stays in the bucket; rename it there to "
                                "get it here.", entry["Path"], self.remote.display, why)
                self.skipped[entry["Path"]] = why
                continue
            listing[entry["Path"]] = entry_version(entry)
        return listing

    def _folder_is_empty(self) -> bool:
        """An empty listing: is the folder really empty, or does it hold only noise and heartbeats (not new)?"""
        try:
            return not self._retrying(
                lambda: self._run(commands.list_top(self.remote.path()), "listing the bucket folder", quiet=True),
                "listing the bucket folder").output.strip()
        except RcloneError as exc:
            if exc.rclone_exit_code != EXIT_DIR_NOT_FOUND:
                raise PersistenceError(f"cannot use {self.remote.display}: {exc}") from exc
            return True

    def establish(self) -> None:
        """After every restore: record the baseline, and upload what only the data folder has.

        Every file this engine's restore wrote, untouched since, is the bucket's version: known with no
        request. A file that was here before the restore (a Docker volume, another cloud's restore, the
        example notebooks) is compared with the bucket's (a HEAD each) and uploaded where it differs; a
        difference with the bucket's own version is a conflict, and both are kept.
        """
        listing = self._listing_at_restore
        here = walk_versions(self.data_dir)
        check = []
        for key, listed in listing.items():
            now = here.get(key)
            if now is None or key in self.known:  # known already: prefer_local looked at it
                continue
            if self._restored.get(key) == now:
                self.known[key] = Known(now[0], now[1], listed)
            else:
                check.append(key)
        if check:
            theirs = self._stat_remote(check)
            for key in check:
                if same(theirs.get(key), here[key]):
                    self.known[key] = Known(here[key][0], here[key][1], listing[key])
        upload = [key for key in here if key not in self.known or not same(here[key], self.known[key].version)]
        self._restored = {}
        for key in here:
            self.manifest.note(key, file_mode(self.data_dir, key))
        for rel in walk_folders(self.data_dir, "") - {""}:
            self.manifest.keep_folder(encode_name(rel), is_empty_folder(self.data_dir / rel))
        if upload:
            log.info("%d file(s) in %s are not in %s yet, or differ; uploading them", len(upload), self.data_dir,
                     self.remote.display)
            self.push(Batch(frozenset(local_name(key) for key in upload)))
        self._write_manifest()

    def prefer_local(self) -> None:
        """For a cloud merged in after the first (README, 'Several clouds'): the data folder holds the winner
        of every disagreement and the loser as a conflict copy, so its differing files overwrite the bucket's."""
        listing = self._listing_at_restore
        here = walk_versions(self.data_dir)
        differ = [key for key in listing if key in here and self._restored.get(key) != here[key]]
        if differ:
            theirs = self._stat_remote(differ)
            for key in differ:
                if key in theirs:
                    self.known[key] = Known(theirs[key][0], theirs[key][1], listing[key])

    def _merge(self, theirs_listed: dict[str, Version]) -> None:
        """Before a merging restore: keep both versions of every file that differs here and in the bucket.

        Same rule as any conflict (README): the newer version keeps the name, the other is kept beside it
        as name.conflictN.ext; equal times keep the local one at the name. The restore that follows copies only
        the files missing here, so nothing local is overwritten.
        """
        candidates = [key for key in theirs_listed if local_version(self.data_dir, key) is not None]
        if not candidates:
            return
        theirs = self._stat_remote(candidates)
        differ = [key for key in candidates if key in theirs
                  and not same(local_version(self.data_dir, key), theirs[key])]
        if differ:
            differ = self._differ_in_content(differ)
        taken = set(theirs_listed)
        for key in differ:
            rel = local_name(key)
            name = conflict_name(rel, lambda c: c in taken or os.path.lexists(self.data_dir / c))
            taken.add(name)
            mine = local_version(self.data_dir, key)
            if mine is not None and theirs[key][1] > mine[1] + MTIME_SLACK_NS:
                os.rename(self.data_dir / rel, self.data_dir / name)  # theirs is newer: it takes the name
                log.warning("WARNING: %s differs here and in %s; the newer version (the bucket's) keeps the name, "
                            "this one is kept as %s", rel, self.remote.display, name)
            else:
                self._download({key: name}, expect={name: None})
                log.warning("WARNING: %s differs here and in %s; the newer version (this one) keeps the name, "
                            "the bucket's is kept as %s", rel, self.remote.display, name)

    def _differ_in_content(self, keys: list[str]) -> list[str]:
        """Of files whose size or time differ, those whose content differs too (same MD5 = same file)."""
        same_size = [k for k in keys if not k.endswith(LINK_SUFFIX)]
        if not same_size:
            return keys
        files = self._scratch_list("hash", same_size)
        run = self._retrying(lambda: self._run(commands.hash_files(self.remote.path(), files), "checking the bucket",
                                               quiet=True), "checking the bucket")
        remote_md5 = {e["Path"]: (e.get("Hashes") or {}).get("md5") for e in json.loads(run.output or "[]")}
        identical = {k for k in same_size if remote_md5.get(k) and remote_md5[k] == md5(self.data_dir / k)}
        return [k for k in keys if k not in identical]

