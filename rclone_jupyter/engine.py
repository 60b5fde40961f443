"""Restore, baseline, push, reconcile for one remote. Owns the data-safety rules (DESIGN.md).

One worker thread owns an Engine; across processes (`start` and `sync --once`) a file lock per remote makes
sure two rclone runs never write to the same remote at once.

The engine keeps `known`: what it believes the bucket folder holds ({path: (size, mtime_ns)}), loaded from
bisync's listing after every reconcile and updated after every push. It is what makes the targeted push
safe: a delete only touches objects we knew, and an object that changed in the bucket behind our back is a
conflict for bisync to resolve (both versions kept), not something to overwrite.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from rclone_jupyter import commands
from rclone_jupyter.bisync_report import BisyncReport, parse_listing, stamp_ns
from rclone_jupyter.changes import Batch
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.filters import is_noise
from rclone_jupyter.rclone import EXIT_DIR_NOT_FOUND, Rclone
from rclone_jupyter.remotes import Remote
from rclone_jupyter.state import FileLock, StateDir

log = logging.getLogger(__name__)

# A remote modtime within this of ours is the same version (some stores round to the millisecond).
_MTIME_SLACK_NS = 1_000_000


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    max_seconds: float = 60.0
    first_wait: float = 0.5
    max_wait: float = 8.0


@dataclasses.dataclass
class PushResult:
    uploaded: int = 0
    deleted: int = 0
    skipped: int = 0
    conflicts: int = 0
    bytes: int = 0
    seconds: float = 0.0
    reconciled: bool = False


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
        self.known: dict[str, tuple[int, int]] = {}
        self.observed: set[str] = set()  # paths this container changed since the last reconcile
        self.remote_was_empty = False
        # The bucket folder as a LIST-only snapshot ({path: (size, server time)}) taken after the last full
        # reconcile: lets the periodic reconcile skip bisync (a HEAD per object on S3) when nobody else wrote.
        self._snapshot: dict[str, tuple[int, int]] | None = None
        # Told of every failed attempt that will be retried, so the status shows the error while we retry.
        self.on_retry: Callable[[BaseException], None] | None = None

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
        path = self.state.scratch() / f"{self.remote.name}-{name}.txt"
        path.write_text("".join(f"{p}\n" for p in paths))
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

        `merge` is for a second (third) cloud restored into a data folder an earlier one filled: a file that
        exists on both sides with other content is kept twice (see _merge), never overwritten.
        """
        # No listing before the copy: one rclone start and one LIST less (~0.1 s) on every start with data.
        # The copy's stats tell a folder with files; only a copy that restored nothing is followed by the
        # listing (is it empty?), and only a failed one by the bucket check (missing bucket: the clear error).
        log.info("restoring %s from %s", self.data_dir, self.remote.display)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = commands.restore(self.remote.path(), self.data_dir, only_missing=merge)
        try:
            if merge:
                self._merge()
            result = self._retrying(lambda: self._run(argv, "restore"), "restore")
        except RcloneError as exc:
            if exc.retryable:
                raise  # retries exhausted: the supervisor says so
            self.check_bucket()  # a missing bucket or refused credentials: the clear error
            if exc.rclone_exit_code != EXIT_DIR_NOT_FOUND:
                raise PersistenceError(f"cannot use {self.remote.display}: {exc}") from exc
            result = None  # the bucket is there, the folder is not: nothing to restore
        stats = result.stats if result is not None else {}
        if result is None:
            self.remote_was_empty = True
        elif stats.get("transfers", 0) + stats.get("checks", 0) > 0:
            self.remote_was_empty = False  # a file was copied or compared with ours: not empty
        else:
            # Nothing restored: only now list, as before, so noise or heartbeats (excluded from the copy)
            # still count as "not empty" and deleted example notebooks do not come back.
            try:
                self.remote_was_empty = not self._retrying(
                    lambda: self._run(commands.list_top(self.remote.path()), "listing the bucket folder",
                                      quiet=True), "listing the bucket folder",
                ).output.strip()
            except RcloneError as exc:
                if exc.rclone_exit_code != EXIT_DIR_NOT_FOUND:
                    raise PersistenceError(f"cannot use {self.remote.display}: {exc}") from exc
                self.remote_was_empty = True  # the bucket answered the copy: the folder is missing
        if self.remote_was_empty:
            # Object stores have no real folders: this creates nothing there, but keeps the promise on others.
            self._retrying(lambda: self._run(commands.mkdir(self.remote.path()), "creating the bucket folder",
                                             quiet=True), "creating the bucket folder")
        log.info("restore from %s done: %d files, %s in %.1f s%s", self.remote.display, stats.get("transfers", 0),
                 human_size(stats.get("bytes", 0)), result.elapsed if result is not None else 0.0,
                 " (the bucket folder is empty)" if self.remote_was_empty else "")

    def baseline(self, *, prefer_local: bool = False) -> None:
        """Establish bisync's baseline: the union of both sides. Never deletes on either side.

        A file that differs goes the newer way, or the data folder's way with `prefer_local` (after a merge,
        the data folder holds the winner of each disagreement and the loser as a conflict copy).
        """
        self._bisync(resync=True, what="baseline", resync_mode="path1" if prefer_local else "newer")
        self.observed.clear()
        self._take_snapshot()

    def _merge(self) -> None:
        """Before a merging restore: keep both versions of every file that differs here and in the bucket.

        Same rule as bisync's conflicts (README): the newer version keeps the name, the other is kept beside it
        as name.conflictN.ext; equal times keep the local one at the name. The restore that follows copies only
        the files missing here, so nothing local is overwritten.
        """
        run = self._retrying(lambda: self._run(commands.list_files(self.remote.path()), "listing the bucket folder",
                                               quiet=True), "listing the bucket folder")
        theirs = _versions(run.output)
        differ = []
        for rel, version in sorted(theirs.items()):
            full = self.data_dir / rel
            if not os.path.lexists(full):
                continue
            mine = _local_version(full) if full.is_file() and not full.is_symlink() else None
            if not _same(mine, version):
                differ.append(rel)
        if differ:
            differ = self._differ_in_content(differ, theirs)
        taken = set(theirs)
        for rel in differ:
            full = self.data_dir / rel
            name = _conflict_name(rel, lambda c: c in taken or os.path.lexists(self.data_dir / c))
            taken.add(name)
            mine = _local_version(full) if full.is_file() and not full.is_symlink() else None
            if mine is not None and theirs[rel][1] > mine[1] + _MTIME_SLACK_NS:
                os.rename(full, self.data_dir / name)  # theirs is newer: it takes the name (restored next)
                log.warning("WARNING: %s differs here and in %s; the newer version (the bucket's) keeps the name, "
                            "this one is kept as %s", rel, self.remote.display, name)
            else:
                self._retrying(lambda: self._run(commands.download_as(self.remote.path(rel), self.data_dir / name),
                                                 "restore", quiet=True), "restore")
                log.warning("WARNING: %s differs here and in %s; the newer version (this one) keeps the name, "
                            "the bucket's is kept as %s", rel, self.remote.display, name)

    def _differ_in_content(self, rels: list[str], theirs: dict[str, tuple[int, int]]) -> list[str]:
        """Of files whose size or time differ, those whose content differs too (same MD5 = same file)."""
        same_size = [r for r in rels if (self.data_dir / r).is_file() and (self.data_dir / r).stat().st_size
                     == theirs[r][0]]
        if not same_size:
            return rels
        files = self._scratch_list("hash", same_size)
        run = self._retrying(lambda: self._run(commands.hash_files(self.remote.path(), files), "checking the bucket",
                                               quiet=True), "checking the bucket")
        remote_md5 = {e["Path"]: (e.get("Hashes") or {}).get("md5") for e in json.loads(run.output or "[]")}
        identical = {r for r in same_size if remote_md5.get(r) and remote_md5[r] == _md5(self.data_dir / r)}
        return [r for r in rels if r not in identical]

    # -- push -----------------------------------------------------------------------------------------

    def push(self, batch: Batch) -> PushResult:
        """Make the bucket hold what the data folder holds for the paths in `batch`."""
        if self.push_mode == "bisync" or batch.overflow:
            started = time.monotonic()
            self.reconcile(extra_observed=batch.paths)
            return PushResult(reconciled=True, seconds=time.monotonic() - started)
        return self._push_targeted(batch)

    def _push_targeted(self, batch: Batch) -> PushResult:
        started = time.monotonic()
        result = PushResult()
        uploads, deletes = self._plan(batch.paths)
        local = {rel: _local_version(self.data_dir / rel) for rel in uploads}
        # Already in the bucket as it is here (e.g. brought in by a reconcile): nothing to send.
        uploads = [rel for rel in uploads if local[rel] is not None and not _same(local[rel], self.known.get(rel))]
        result.skipped = len(local) - len(uploads)
        conflicts: list[str] = []
        if uploads:
            remote_now = self._stat_remote(uploads)
            for rel in uploads:
                theirs = remote_now.get(rel)
                if theirs is not None and not _same(theirs, self.known.get(rel)):
                    # Changed (or created) in the bucket since we last looked: let bisync keep both versions.
                    conflicts.append(rel)
            uploads = [rel for rel in uploads if rel not in conflicts]
        if uploads:
            files = self._scratch_list("upload", uploads)
            self._retrying(lambda: self._rc(commands.copy_files(self.data_dir, self.remote.path(), files), "push"),
                           "push")
            result.bytes = sum(local[rel][0] for rel in uploads)
            # A file written to while it was uploaded: the version that landed is not the one we listed, and
            # recording ours would make the next push see a change 'in the bucket' (a false conflict). Ask the
            # bucket what landed for those files only.
            moved = [rel for rel in uploads if not _same(_local_version(self.data_dir / rel), local[rel])]
            landed = self._stat_remote(moved) if moved else {}
            for rel in uploads:
                version = landed.get(rel) if rel in moved else local[rel]
                if version is not None:
                    self.known[rel] = version
            result.uploaded = len(uploads)
        if deletes:
            doomed = sorted(self._known_under(deletes))
            if doomed:
                # Delete only the version we knew. One changed in the bucket meanwhile (another machine, a second
                # container on this folder) is newer work than our delete: reconcile keeps it.
                doomed, changed = self._still_as_known(doomed)
                conflicts += changed
            if doomed:
                self._delete_known(doomed)
                result.deleted = len(doomed)
        self.observed |= batch.paths
        if conflicts:
            result.conflicts = len(conflicts)
            log.warning("%d file(s) changed in %s since the last sync and here too (%s); reconciling so both "
                        "versions are kept", len(conflicts), self.remote.display, ", ".join(conflicts[:5]))
            self.reconcile()
            result.reconciled = True
        result.seconds = time.monotonic() - started
        return result

    def _delete_known(self, rels: list[str]) -> None:
        """Delete exactly these objects from the bucket folder and forget them."""
        files = self._scratch_list("delete", rels)
        self._retrying(lambda: self._rc(commands.delete_files(self.remote.path(), files), "delete"), "delete")
        for rel in rels:
            self.known.pop(rel, None)

    def _plan(self, paths: Iterable[str]) -> tuple[list[str], list[str]]:
        """Split changed paths into files to upload (folders expanded) and paths confirmed absent locally."""
        uploads: set[str] = set()
        deletes: list[str] = []
        for rel in sorted(paths):
            full = self.data_dir / rel
            if full.is_symlink():
                continue  # never followed out of the data folder, never uploaded
            if full.is_dir():
                uploads.update(_walk_files(self.data_dir, rel))
                # Known files under a folder of this name that are gone now (a folder replaced or moved): the
                # push expands this with _known_under, which keeps only objects absent here.
                deletes.append(rel)
            elif full.is_file():
                uploads.add(rel)
            elif not os.path.lexists(full):
                deletes.append(rel)
        return sorted(uploads), deletes

    def _still_as_known(self, rels: list[str]) -> tuple[list[str], list[str]]:
        """Split known objects into those the bucket holds as we knew them and those changed there since.

        Objects already gone from the bucket are dropped from `known` and from both lists.
        """
        remote_now = self._stat_remote(rels) if rels else {}
        same: list[str] = []
        changed: list[str] = []
        for rel in rels:
            if rel not in remote_now:
                self.known.pop(rel, None)
            elif _same(remote_now[rel], self.known.get(rel)):
                same.append(rel)
            else:
                changed.append(rel)
        return same, changed

    def _known_under(self, rels: Iterable[str]) -> set[str]:
        """The known bucket objects at or under each path, still absent locally (checked again, now)."""
        out: set[str] = set()
        for rel in rels:
            prefix = rel.rstrip("/") + "/"
            for key in self.known:
                if key == rel or key.startswith(prefix):
                    if not os.path.lexists(self.data_dir / key):
                        out.add(key)
        return out

    def _stat_remote(self, rels: list[str]) -> dict[str, tuple[int, int]]:
        files = self._scratch_list("stat", rels)
        answer = self._retrying(lambda: self._rc(commands.stat_files(self.remote.path(), files),
                                                 "checking the bucket"), "checking the bucket")
        return _versions_of(answer.get("list") or [])

    # -- reconcile ------------------------------------------------------------------------------------

    def reconcile(self, extra_observed: Iterable[str] = ()) -> None:
        """Full two-way sync with the bucket (bisync), handling its safety guards on purpose:

        - a guard tripped by changes this container made (the watcher saw them) is passed with --force;
        - deletions on the bucket side beyond the guard, or changes here the watcher never saw, are not
          propagated: bisync's baseline is rebuilt as the union of both sides (nothing deleted, nothing lost)
          and the situation is reported as an ERROR;
        - a run that asks for --resync (an empty side, lost listings) gets the same union rebuild.
        """
        observed = self.observed | set(extra_observed)
        report = BisyncReport()
        try:
            self._bisync(resync=False, what="reconcile", report=report)
        except RcloneError as exc:
            if report.guards:
                self._after_guard(report, observed, exc)
            elif report.needs_resync:
                self._before_rebuild(report, observed)
                self._bisync(resync=True, what="baseline")
            else:
                raise
        self.observed.clear()
        self._take_snapshot()

    def reconcile_if_changed(self) -> bool:
        """The periodic reconcile: a full bisync only when the bucket folder changed other than by our pushes.

        One LIST per 1,000 objects instead of bisync's LIST + HEAD per object. Anything that differs from the
        snapshot taken after the last full reconcile, at a path this container did not push since, is a change
        made elsewhere: then bisync runs and brings it in. Return True if bisync ran.

        Limit: an outside change to a path we also pushed since the last full reconcile is not noticed here;
        it is at our next push of that path (a conflict, both kept) or at the next full reconcile (start,
        `sync --once`, or any other outside change).
        """
        if self._snapshot is not None:
            now = self._snapshot_now()
            if now is not None:
                before = self._snapshot
                changed = {p for p in before.keys() | now.keys() if before.get(p) != now.get(p)}
                elsewhere = [p for p in changed if not _covered(p, self.observed)]
                if not elsewhere:
                    log.debug("the bucket folder %s changed only by our pushes (%d paths); no bisync needed",
                              self.remote.display, len(changed))
                    self._snapshot = now
                    return False
                log.info("%d file(s) changed in %s from elsewhere (e.g. %s); reconciling", len(elsewhere),
                         self.remote.display, ", ".join(sorted(elsewhere)[:3]))
        self.reconcile()
        return True

    def _snapshot_now(self) -> dict[str, tuple[int, int]] | None:
        try:
            run = self._retrying(lambda: self._run(commands.snapshot(self.remote.path()), "listing the bucket folder",
                                                   quiet=True), "listing the bucket folder")
        except RcloneError as exc:
            log.debug("could not list %s for the snapshot: %s", self.remote.display, exc)
            return None
        return _versions(run.output)

    def _take_snapshot(self) -> None:
        # Without a snapshot the next periodic reconcile simply runs bisync.
        self._snapshot = self._snapshot_now()

    def _before_rebuild(self, report: BisyncReport, observed: set[str]) -> None:
        """bisync stops when a side is empty, and its rebuild (the union of both sides) would undo deletions.

        - The data folder is empty: the user deleted everything on purpose. The deletions the watcher saw are
          applied to the bucket first (only objects we knew), so the union does not bring them back.
        - The bucket folder is empty but we knew files in it: it was emptied from outside. Nothing is deleted
          here; the union uploads the local copies again, and this is reported as an ERROR.
        """
        doomed: list[str] = []
        if "Path1" in report.empty_side and not _walk_files(self.data_dir, ""):
            doomed, changed = self._still_as_known(sorted(self._known_under(observed)))
            if changed:
                log.warning("WARNING: not deleting %s from %s: changed there since the last sync (newer work than "
                            "the delete); it comes back here", ", ".join(changed[:5]), self.remote.display)
        if doomed:
            self._delete_known(doomed)
            log.info("the data folder is empty: deleted the %d file(s) deleted here from %s too", len(doomed),
                     self.remote.display)
        if "Path2" in report.empty_side and self.known:
            log.error(
                "ERROR: all %d file(s) disappeared from %s since the last sync (e.g. %s). Not deleting them "
                "here: the local copies are kept and uploaded again. Delete files from JupyterLab to delete them.",
                len(self.known), self.remote.display, ", ".join(sorted(self.known)[:5]))
        else:
            log.info("bisync asked for a new baseline (%s); rebuilding it as the union of both sides",
                     ", ".join(sorted(report.empty_side)) or "lost listing")

    def _after_guard(self, report: BisyncReport, observed: set[str], exc: RcloneError) -> None:
        unseen_here = [p for p in report.paths("Path1") if not _covered(p, observed)]
        bucket_deletes = report.paths("Path2", "deleted")
        if report.guard_on("Path2", "too many deletes"):
            log.error(
                "ERROR: %d file(s) disappeared from %s since the last sync (e.g. %s). Not deleting them here: "
                "the local copies are kept and uploaded again. Delete files from JupyterLab to delete them.",
                len(bucket_deletes), self.remote.display, ", ".join(bucket_deletes[:5]))
            self._bisync(resync=True, what="baseline")
        elif unseen_here and report.guard_on("Path1", "too many deletes"):
            log.error(
                "ERROR: %d change(s) in %s were not seen by the watcher (e.g. %s); not propagating deletions "
                "that were not observed. Rebuilding the baseline as the union of both sides.",
                len(unseen_here), self.data_dir, ", ".join(unseen_here[:5]))
            self._bisync(resync=True, what="baseline")
        else:
            # Guards tripped by what we did ourselves (the watcher saw it), or 'all files changed' on a small
            # tree: bisync's own conflict handling keeps both versions of anything changed on both sides.
            log.info("bisync safety check tripped on a small or fully changed tree (%s); the changes are ours, "
                     "running it with --force", ", ".join(f"{k} on {s}" for k, s in sorted(report.guards)))
            self._bisync(resync=False, force=True, what="reconcile")

    def _bisync(self, *, resync: bool, what: str, force: bool = False, report: BisyncReport | None = None,
                resync_mode: str = "newer") -> None:
        argv = commands.bisync(self.data_dir, self.remote.path(), self.workdir, resync=resync, force=force,
                               resync_mode=resync_mode)

        def feed(record: dict) -> None:
            if report is not None:
                # In JSON logs rclone puts a message's subject (e.g. "Safety abort") in "object".
                subject = record.get("object")
                report.feed(f"{subject}: {record.get('msg', '')}" if subject else record.get("msg", ""))

        def once():
            self._clear_stale_bisync_locks()
            return self._run(argv, what, on_message=feed)

        if report is None:
            run = self._retrying(once, what)
        else:
            run = once()  # the caller reads the report of this very run
        self._load_known()
        stats = run.stats
        log.info("%s with %s: %d transferred, %d deleted, %s, %.1f s", what, self.remote.display,
                 stats.get("transfers", 0), stats.get("deletes", 0), human_size(stats.get("bytes", 0)), run.elapsed)

    def _clear_stale_bisync_locks(self) -> None:
        # We hold our own lock on this remote, so no other bisync can be running with this workdir: a lock
        # file left here is from a killed run, and would block every run after it.
        for lck in self.workdir.glob("*.lck"):
            lck.unlink(missing_ok=True)

    def _load_known(self) -> None:
        listings = sorted(self.workdir.glob("*.path2.lst"))
        if listings:
            self.known = parse_listing(listings[-1].read_text(errors="replace"))


def _covered(path: str, observed: set[str]) -> bool:
    if path in observed:
        return True
    parts = path.split("/")
    return any("/".join(parts[:i]) in observed for i in range(1, len(parts)))


def _walk_files(root: Path, rel: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root / rel):
        dirnames[:] = [d for d in dirnames if not is_noise(d) and not os.path.islink(os.path.join(dirpath, d))]
        for name in filenames:
            full = os.path.join(dirpath, name)
            relpath = os.path.relpath(full, root).replace(os.sep, "/")
            if not is_noise(relpath) and not os.path.islink(full):
                out.append(relpath)
    return out


def _conflict_name(rel: str, taken: Callable[[str], bool]) -> str:
    """The first free `stem.conflictN.ext` beside `rel`: the names bisync gives its conflict losers."""
    folder, _, name = rel.rpartition("/")
    stem, ext = os.path.splitext(name)
    if not stem:  # a dotfile such as '.env'
        stem, ext = name, ""
    for n in range(1, 10_000):
        candidate = f"{stem}.conflict{n}{ext}"
        candidate = f"{folder}/{candidate}" if folder else candidate
        if not taken(candidate):
            return candidate
    raise PersistenceError(f"too many conflict copies of {rel}")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions(lsjson_output: str) -> dict[str, tuple[int, int]]:
    """Given rclone lsjson's output, return {path: (size, mtime_ns)}."""
    return _versions_of(json.loads(lsjson_output or "[]"))


def _versions_of(entries: list[dict]) -> dict[str, tuple[int, int]]:
    """Given listing entries (lsjson's, or the rc's operations/list), return {path: (size, mtime_ns)}."""
    return {e["Path"]: (int(e["Size"]), stamp_ns(e["ModTime"])) for e in entries}


def _local_version(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _same(a: tuple[int, int] | None, b: tuple[int, int] | None) -> bool:
    if a is None or b is None or a[0] != b[0]:
        return False
    if abs(a[1] - b[1]) <= _MTIME_SLACK_NS:
        return True
    # A store that lost rclone's modtime metadata reports whole seconds (S3's Last-Modified, truncated; seen
    # after restarting `rclone serve s3`). The same second counts as the same version: otherwise an unchanged
    # object looks edited elsewhere, a false conflict, and a deletion made here is undone.
    whole = 1_000_000_000
    return (a[1] % whole == 0 or b[1] % whole == 0) and a[1] // whole == b[1] // whole


def human_size(n: int | float) -> str:
    n = float(n or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
