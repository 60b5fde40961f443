"""One remote: the model of the bucket as this container knows it, and the calls that move data.

The phases are mixed in, one module each: engine/restore.py (restore, establish), engine/push.py (the watcher's changes),
engine/reconcile.py (changes made elsewhere, decided by reconcile_plan.plan, a pure function). This module holds what
they share: `known`, the manifest (model/manifest.py), the listings, and the transfer calls through the one rclone
runner (rclone/runner.py) and its rcd (rclone/rcd.py): upload, download (staged, placed never through a link), delete, stat.

One worker thread owns an Engine (daemon/syncer.py); across processes (`start` and `sync --once`) a file lock per
remote makes sure two writing rclone runs never meet on one remote. `rclone bisync` stays for
RCLONE_JUPYTER_PUSH_MODE=bisync and `sync --once` without a running `start` (engine/bisync.py). The rules:
docs/design.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from rclone_jupyter.rclone import commands
from rclone_jupyter.engine.bisync import BisyncMode
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.model.filters import is_noise
from rclone_jupyter.model.known import (LINK_SUFFIX, Known, Version, encode_name, entry_version, local_name,
                                  local_version, same)
from rclone_jupyter.model.manifest import MANIFEST, Manifest
from rclone_jupyter.engine.push import PartlyPushed, PushPhase
from rclone_jupyter.rclone.runner import EXIT_DIR_NOT_FOUND, Rclone
from rclone_jupyter.engine.reconcile import ReconcilePhase
from rclone_jupyter.model.to_come import ToCome
from rclone_jupyter.config.remotes import Remote
from rclone_jupyter.engine.restore import RestorePhase
from rclone_jupyter.state import FileLock, StateDir
from rclone_jupyter.local.tree import STAGING_PREFIX, place, unrepresentable

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


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RcloneError) and exc.retryable


class Engine(RestorePhase, PushPhase, ReconcilePhase):
    """One remote: the state (`known`, the manifest), the transfer calls, and the phases mixed in from
    engine/restore.py, engine/push.py and engine/reconcile.py."""

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
        # Told of the restore's progress: (bytes done, bytes in all, files done, files in all).
        self.on_progress: Callable[[int, int, int, int], None] | None = None
        self._listing_at_restore: dict[str, Version] = {}
        self._restored: dict[str, Version] = {}
        self.manifest = Manifest()  # file modes and empty folders (model/manifest.py)
        # The manifest as the last listing showed it; None after our own upload of it, until listed again.
        self._manifest_listed: Version | None = None
        self._manifest_seen: Version | None = None
        self._manifest_size: int | None = None
        self._preset_entries: list[dict] | None = None
        # The large files of the start still on their way (engine/background.py); never in `known` until placed.
        self.to_come = ToCome()
        # What the restore brought before JupyterLab started, and what it has in all: (bytes, files) each.
        self.restore_first: tuple[int, int] = (0, 0)
        self.restore_total: tuple[int, int] = (0, 0)
        self.bisync = BisyncMode(self)

    def _take_arrivals(self) -> frozenset[str]:
        """Know the large files placed since the last call; return the names still to come (left alone)."""
        arrived, waiting = self.to_come.take()
        self.known.update(arrived)
        return waiting

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

    def _listing(self) -> dict[str, Version]:
        """The bucket folder now, from LIST requests alone (a missing folder is an empty one)."""
        try:
            entries = self._listing_entries()
        except RcloneError as exc:
            if exc.rclone_exit_code != EXIT_DIR_NOT_FOUND:
                raise
            entries = []
        return {e["Path"]: entry_version(e) for e in self._without_manifest(entries)
                if e["Path"] not in self.skipped and not unrepresentable(e["Path"])}

    def _without_manifest(self, entries: list[dict]) -> list[dict]:
        """The listing's files, and the manifest's stamp noted apart (model/manifest.py)."""
        out = []
        self._manifest_seen = None
        for entry in entries:
            if entry["Path"] == MANIFEST:
                self._manifest_seen = entry_version(entry)
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

    def _delete_known(self, keys: list[str]) -> None:
        """Delete exactly these objects from the bucket folder and forget them."""
        files = self._scratch_list("delete", keys)
        self._retrying(lambda: self._rc(commands.delete_files(self.remote.path(), files), "delete"), "delete")
        for key in keys:
            self.known.pop(key, None)

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
                out[path] = entry_version(entry)
        if rest:
            files = self._scratch_list("stat", rest)
            answer = self._retrying(lambda: self._rc(commands.stat_files(self.remote.path(), files),
                                                     "checking the bucket"), "checking the bucket")
            out.update(_versions_of(answer.get("list") or []))
        wanted = set(keys)
        return {key: version for key, version in out.items() if key in wanted}

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
    return {e["Path"]: entry_version(e) for e in entries if not e.get("IsDir")}
