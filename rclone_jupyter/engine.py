"""Restore, push and reconcile one remote: the engine's phases, over one model of the bucket (`known`).

One worker thread owns an Engine (syncer.py); across processes (`start` and `sync --once`) a file lock per
remote makes sure two writing rclone runs never meet on one remote. The rules are in docs/design.md:

- start: one LIST of the bucket folder (the baseline's bucket side, the restore's totals), one `rclone copy`
  into the data folder (LIST + one GET per object: rclone's modtime comes with the GET), then `establish`:
  every file the copy wrote is known as it is, with no HEAD; files that were here before are compared;
- push: exactly the paths the watcher saw, each checked against `known` (a changed object in the bucket is a
  conflict: both kept) and uploaded or deleted through the long-running rcd;
- reconcile: a LIST-only listing compared with `known` (reconcile.plan, a pure function) brings changes made
  elsewhere in, with no HEAD per object and no full bisync.

`rclone bisync` stays for RCLONE_JUPYTER_PUSH_MODE=bisync and `sync --once` without a running `start`
(bisync_mode.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from rclone_jupyter import commands, reconcile
from rclone_jupyter.bisync_report import stamp_ns
from rclone_jupyter.changes import Batch
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.filters import is_noise
from rclone_jupyter.manifest import MANIFEST, Manifest, file_mode
from rclone_jupyter.known import (LINK_SUFFIX, MTIME_SLACK_NS, Known, Version, encode_name, key_of, keys_for,
                                  local_name,
                                  local_version, same, under_link)
from rclone_jupyter.rclone import EXIT_DIR_NOT_FOUND, Rclone
from rclone_jupyter.tree import (STAGING_PREFIX, below_link, clear_staging, conflict_name, is_empty_folder, md5,
                                 place, unrepresentable, walk_folders, walk_versions)
from rclone_jupyter.remotes import Remote
from rclone_jupyter.state import FileLock, StateDir

log = logging.getLogger(__name__)

# Above this many new names in one push, their absence in the bucket is checked with one LIST per new folder
# instead of one HEAD per name (a `git clone` of 1,500 files: a few LISTs, not 1,500 HEADs).
HEAD_LIMIT = 8


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    max_seconds: float = 60.0
    first_wait: float = 0.5
    max_wait: float = 8.0


# While `start` runs, the syncer owns retries (its backoff keeps changes pending and shows them in the status):
# an engine call there makes one attempt. The start phases (restore, establish) have no syncer: they retry here.
ONE_ATTEMPT = RetryPolicy(attempts=1)


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


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RcloneError) and exc.retryable


class Engine:
    def __init__(self, rclone: Rclone, remote: Remote, data_dir: Path, state: StateDir, *,
                 push_mode: str = "targeted", retry: RetryPolicy = RetryPolicy()):
        self.rclone = rclone
        self.remote = remote
        self.data_dir = data_dir
        self.state = state
        self.push_mode = push_mode
        self.retry = retry
        self.workdir = state.workdir(remote.name)
        self.lock = FileLock(state.lock_path(f"remote-{remote.name}"))
        self.known: dict[str, Known] = {}
        self.remote_was_empty = False
        # Objects the data folder cannot hold (a `..` in the name, a name too long): never restored, never
        # deleted, shown in the status. {name: why}
        self.skipped: dict[str, str] = {}
        # The data folder paths changed here and not pushed yet (the syncer's change set sets this).
        self.pending_here: Callable[[], set[str]] = set
        # Told of every failed attempt that will be retried, so the status shows the error while we retry.
        self.on_retry: Callable[[BaseException], None] | None = None
        # Told of the restore's progress: (bytes done, bytes in all, files done, files in all).
        self.on_progress: Callable[[int, int, int, int], None] | None = None
        self._listing_at_restore: dict[str, Version] = {}
        self._restored: dict[str, Version] = {}
        self.manifest = Manifest()  # file modes and empty folders (manifest.py)
        # The manifest as the last listing showed it; None after our own upload of it, until listed again.
        self._manifest_listed: Version | None = None
        self._manifest_seen: Version | None = None
        self._manifest_size: int | None = None
        self._preset_entries: list[dict] | None = None
        from rclone_jupyter.bisync_mode import BisyncMode  # bisync_mode imports this module's helpers

        self.bisync = BisyncMode(self)

    # -- plumbing -------------------------------------------------------------------------------------

    def _run(self, argv, what: str, **kwargs):
        with self.lock.held():
            return self.rclone.run(argv, what=what, **kwargs)

    def _rc(self, call: tuple[str, dict], what: str) -> dict:
        with self.lock.held():
            return self.rclone.rc(call, what=what)

    def _retrying(self, fn: Callable, what: str, policy: RetryPolicy | None = None):
        """Call fn(); retry transient rclone failures with exponential backoff, bounded by attempts and time."""
        policy = policy or self.retry

        def before_sleep(state) -> None:
            exc = state.outcome.exception()
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s",
                        what, state.attempt_number, exc, state.next_action.sleep)
            if self.on_retry is not None:
                self.on_retry(exc)

        for attempt in Retrying(
            retry=retry_if_exception(_is_retryable),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
            wait=wait_exponential(multiplier=policy.first_wait, max=policy.max_wait),
            before_sleep=before_sleep,
            reraise=True,
        ):
            with attempt:
                return fn()

    def _scratch_list(self, name: str, paths: Iterable[str]) -> Path:
        """A list file for rclone (one name a line) in the private state dir."""
        path = self.state.scratch() / f"{self.remote.name}-{name}.txt"
        try:
            path.write_text("".join(f"{p}\n" for p in paths))
        except OSError as exc:  # a full or read-only state disk: the changes stay pending and are retried
            raise RcloneError(f"cannot write to the state directory {self.state.path} ({exc.strerror})",
                              exit_code=None, retryable=True) from exc
        return path

    # -- start ----------------------------------------------------------------------------------------

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

    def restore(self, *, merge: bool = False) -> None:
        """Copy the bucket folder into the data folder. Never deletes anything locally.

        One LIST of the bucket folder first: it is the bucket side of the baseline (`establish`), it finds the
        objects the data folder cannot hold, and it gives the restore's totals. Then one `rclone copy`.
        `merge` is for a second (third) cloud restored into a data folder an earlier one filled: a file that
        exists on both sides with other content is kept twice (see _merge), never overwritten.
        """
        log.info("restoring %s from %s", self.data_dir, self.remote.display)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        clear_staging(self.data_dir)
        before = walk_versions(self.data_dir)
        listing = self._restore_listing(check_local=bool(before))
        self._listing_at_restore = listing
        total = sum(size for size, _ in listing.values())
        self._progress(0, total, 0, len(listing))
        result = None
        # Only folders or noise there (no file): still copied, so empty folders come back.
        if listing or (not self.skipped and not self._folder_is_empty()):
            if merge:
                self._merge(listing)
            argv = commands.restore(self.remote.path(), self.data_dir, only_missing=merge,
                                    excludes=tuple(self.skipped))

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
        self._progress(total, total, len(listing), len(listing))
        log.info("restore from %s done: %d files, %s in %.1f s%s", self.remote.display, stats.get("transfers", 0),
                 human_size(stats.get("bytes", 0)), result.elapsed if result is not None else 0.0,
                 " (the bucket folder is empty)" if self.remote_was_empty else "")

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
            listing[entry["Path"]] = (int(entry["Size"]), stamp_ns(entry["ModTime"]))
        return listing

    def _listing(self) -> dict[str, Version]:
        """The bucket folder now, from LIST requests alone (a missing folder is an empty one)."""
        try:
            entries = self._listing_entries()
        except RcloneError as exc:
            if exc.rclone_exit_code != EXIT_DIR_NOT_FOUND:
                raise
            entries = []
        return {e["Path"]: (int(e["Size"]), stamp_ns(e["ModTime"])) for e in self._without_manifest(entries)
                if e["Path"] not in self.skipped and not unrepresentable(e["Path"])}

    def _without_manifest(self, entries: list[dict]) -> list[dict]:
        """The listing's files, and the manifest's stamp noted apart (manifest.py)."""
        out = []
        self._manifest_seen = None
        for entry in entries:
            if entry["Path"] == MANIFEST:
                self._manifest_seen = (int(entry["Size"]), stamp_ns(entry["ModTime"]))
                if self._manifest_listed is None and self._manifest_size is None:
                    self._manifest_listed = self._manifest_seen  # first sight (the restore's listing)
            else:
                out.append(entry)
        return out

    def _read_manifest(self) -> str:
        try:
            return self._retrying(lambda: self._run(commands.cat(self.remote.path(MANIFEST)), "reading file modes",
                                                    quiet=True), "reading file modes").output
        except RcloneError as exc:
            if exc.retryable:
                raise
            return ""  # gone meanwhile: no modes to apply

    def _write_manifest(self) -> None:
        """Upload the manifest if it changed (one PUT)."""
        if not self.manifest.dirty:
            return
        scratch = self.state.scratch() / f"{self.remote.name}-manifest"
        target = scratch / MANIFEST
        target.parent.mkdir(parents=True, exist_ok=True)
        text = self.manifest.dump()
        target.write_text(text)
        files = self._scratch_list("manifest", [MANIFEST])
        self._retrying(lambda: self._rc(commands.upload_manifest(scratch, self.remote.path(), files), "file modes"),
                       "file modes")
        self.manifest.dirty = False
        self._manifest_listed, self._manifest_size = None, len(text.encode())

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

    def use_listing(self, entries: list[dict]) -> None:
        """The pre-flight's listing of the bucket folder, taken just before: the restore uses it instead of
        listing the folder again (the pre-flight's is unfiltered: noise and heartbeats are dropped here)."""
        self._preset_entries = [e for e in entries if e["Path"] == MANIFEST or not is_noise(e["Path"])]

    def _listing_entries(self) -> list[dict]:
        preset, self._preset_entries = self._preset_entries, None
        if preset is not None:
            return preset
        run = self._retrying(lambda: self._run(commands.snapshot(self.remote.path()), "listing the bucket folder",
                                               quiet=True), "listing the bucket folder")
        return json.loads(run.output or "[]")

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

    # -- push -----------------------------------------------------------------------------------------

    def push(self, batch: Batch) -> PushResult:
        """Make the bucket hold what the data folder holds for the paths in `batch`."""
        if self.push_mode == "bisync":
            return self.bisync.push(batch)
        if batch.overflow:
            started = time.monotonic()
            self.reconcile(changed_here=lambda _key: True, walk=True)
            return PushResult(reconciled=True, seconds=time.monotonic() - started)
        return self._push_paths(batch.paths)

    def _push_paths(self, paths: Iterable[str]) -> PushResult:
        started = time.monotonic()
        result = PushResult()
        uploads, deletes, folders = self._plan(paths)
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

    def _upload(self, keys: list[str], local: dict[str, Version | None]) -> None:
        """Upload exactly these objects from the data folder, and know them as uploaded.

        If the call fails for a batch, each file is tried on its own: one file the storage refuses (a name it
        cannot hold, say) must not keep every other change of the batch from being saved. The ones that fail
        stay pending, and the error names them.
        """
        files = self._scratch_list("upload", keys)
        try:
            self._retrying(lambda: self._rc(commands.copy_files(self.data_dir, self.remote.path(), files), "push"),
                           "push")
        except RcloneError as exc:
            if len(keys) == 1 or not exc.retryable:
                raise
            failed = []
            for key in keys:
                one = self._scratch_list("upload-one", [key])
                try:
                    self._rc(commands.copy_files(self.data_dir, self.remote.path(), one), "push")
                except RcloneError:
                    failed.append(key)
            for key in keys:
                if key not in failed and local[key] is not None:
                    self.known[key] = Known(local[key][0], local[key][1], None)
            if failed:
                raise PartlyPushed(f"push failed for {len(failed)} of {len(keys)} file(s) (e.g. "
                                   f"{', '.join(repr(local_name(k)) for k in failed[:3])}): {exc}",
                                   {local_name(k) for k in failed}) from exc
            return
        # A file written to while it was uploaded: the version that landed is not the one we listed, and
        # recording ours would make the next push see a change 'in the bucket' (a false conflict). Ask the
        # bucket what landed for those files only.
        moved = [key for key in keys if not same(local_version(self.data_dir, key), local[key])]
        landed = self._stat_remote(moved) if moved else {}
        for key in keys:
            version = landed.get(key) if key in moved else local[key]
            if version is not None:
                self.known[key] = Known(version[0], version[1], None)

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

    def _delete_known(self, keys: list[str]) -> None:
        """Delete exactly these objects from the bucket folder and forget them."""
        files = self._scratch_list("delete", keys)
        self._retrying(lambda: self._rc(commands.delete_files(self.remote.path(), files), "delete"), "delete")
        for key in keys:
            self.known.pop(key, None)

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

    def _stat_remote(self, keys: list[str]) -> dict[str, Version]:
        """Size and modtime of these objects in the bucket now (missing ones are left out).

        One HEAD a name, except for many names in folders the bucket never held (a `git clone`): one LIST of
        each such folder proves them absent.
        """
        new_folders, rest = _new_folders(keys, self.known) if len(keys) > HEAD_LIMIT else ({}, keys)
        out: dict[str, Version] = {}
        for folder in new_folders:
            answer = self._retrying(lambda folder=folder: self._rc(commands.list_folder(self.remote.path(), folder),
                                                                   "checking the bucket"), "checking the bucket")
            for entry in answer.get("list") or []:
                path = f"{folder}/{entry['Path']}"
                out[path] = (int(entry["Size"]), stamp_ns(entry["ModTime"]))
        if rest:
            files = self._scratch_list("stat", rest)
            answer = self._retrying(lambda: self._rc(commands.stat_files(self.remote.path(), files),
                                                     "checking the bucket"), "checking the bucket")
            out.update(_versions_of(answer.get("list") or []))
        return {key: version for key, version in out.items() if key in set(keys)}

    # -- download -------------------------------------------------------------------------------------

    def _download(self, targets: dict[str, str], *, expect: dict[str, Version | None],
                  listing: dict[str, Version] | None = None) -> dict[str, Version]:
        """Bring objects into the data folder: {object name: data folder path}. Return what was placed.

        An object placed under its own name is known from then on (as `listing` shows it, if given).

        Downloads land in a private staging folder first, then each is moved into place only if the data
        folder's version there is still `expect[path]` (None: nothing there), and only through real folders:
        nothing is written through a link, and a file the user changed meanwhile is never overwritten (its
        push, queued, meets the bucket's version as a conflict and both are kept).
        """
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.data_dir))
        placed: dict[str, Version] = {}
        try:
            files = self._scratch_list("download", targets)
            self._retrying(lambda: self._rc(commands.download_files(self.remote.path(), staging, files), "pull"),
                           "pull")
            for key, rel in sorted(targets.items()):
                staged = staging / local_name(key)
                try:
                    staged_st = os.lstat(staged)
                except FileNotFoundError:
                    continue  # gone from the bucket meanwhile
                suffix = LINK_SUFFIX if key.endswith(LINK_SUFFIX) else ""
                wanted = expect.get(rel)
                if (os.path.lexists(self.data_dir / rel) if wanted is None
                        else not same(local_version(self.data_dir, encode_name(rel) + suffix), wanted)):
                    log.info("%s changed here while it was downloaded from %s; keeping this version", rel,
                             self.remote.display)
                    continue
                if place(self.data_dir, staged, rel):
                    size = (len(os.fsencode(os.readlink(self.data_dir / rel))) if stat.S_ISLNK(staged_st.st_mode)
                            else staged_st.st_size)
                    placed[encode_name(rel) + suffix] = (size, staged_st.st_mtime_ns)
                    if rel == local_name(key):
                        self.known[key] = Known(size, staged_st.st_mtime_ns, (listing or {}).get(key))
                        self.manifest.apply(self.data_dir, key)
                else:
                    log.warning("WARNING: not writing %s: a folder on its way is a link or a file; it stays in %s",
                                rel, self.remote.display)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return placed

    # -- reconcile ------------------------------------------------------------------------------------

    def reconcile(self, changed_here: Callable[[str], bool] = lambda _key: False, *, walk: bool = False) -> PushResult:
        """Bring changes made elsewhere in, from one LIST-only listing compared with `known` (reconcile.plan).

        `changed_here(name)` says whether this container changed a data folder path since (queued or in
        flight): such a path is never overwritten or deleted here. `walk` (the watcher lost track) first
        compares the whole data folder with `known` and pushes what differs.
        """
        if self.push_mode == "bisync":
            self.bisync.reconcile()
            return PushResult(reconciled=True)
        started = time.monotonic()
        result = PushResult(reconciled=True)
        if walk:
            self._push_walk()
        listing = self._listing()
        seen: dict[str, Version | None] = {}

        def local(key: str) -> Version | None:
            seen[key] = local_version(self.data_dir, key)
            return seen[key]

        plan = reconcile.plan(self.known, listing, local, lambda key: changed_here(local_name(key)))
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


# -- helpers -----------------------------------------------------------------------------------------------


def _new_folders(keys: list[str], known: dict[str, Known]) -> tuple[list[str], list[str]]:
    """Group names by the topmost folder on their way that holds no known object; the rest stay names."""
    known_dirs: set[str] = set()
    for key in known:
        parts = key.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            known_dirs.add("/".join(parts[:i]))
    folders: set[str] = set()
    rest = []
    for key in keys:
        parts = key.split("/")[:-1]
        top = next(("/".join(parts[:i]) for i in range(1, len(parts) + 1) if "/".join(parts[:i]) not in known_dirs),
                   None)
        if top is None:
            rest.append(key)
        else:
            folders.add(top)
    # A folder inside another new one is listed with it.
    tops = sorted(f for f in folders if not any(f.startswith(o + "/") for o in folders))
    return tops, rest


def _versions_of(entries: list[dict]) -> dict[str, Version]:
    """Given listing entries (lsjson's, or the rc's operations/list), return {path: (size, mtime_ns)}."""
    return {e["Path"]: (int(e["Size"]), stamp_ns(e["ModTime"])) for e in entries if not e.get("IsDir")}


def human_size(n: int | float) -> str:
    n = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
