"""The bucket folder as a store (engine/store.py), over rclone: the runner for listings and the restore's
bulk copy, the rcd for the push path's calls (one local HTTP call each) and for background transfers.

The same class runs against every backend rclone has. In tests it runs against rclone's local backend (a real
rclone against a real folder), so the engine's rules are tested in-process without a storage server.

Each call holds the remote's file lock (two writing rclone runs never meet on one remote, across processes)
and is retried as `retry` says (rclone/retry.py); name lists go through private scratch files.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rclone_jupyter.config.remotes import Remote, s3
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.model.known import Version, entry_version
from rclone_jupyter.rclone import commands
from rclone_jupyter.rclone.listing import read_listing
from rclone_jupyter.rclone.retry import RetryPolicy, retrying
from rclone_jupyter.rclone.runner import EXIT_DIR_NOT_FOUND, Rclone, RunResult
from rclone_jupyter.state import FileLock

# A background job's status is asked this often while someone waits for it.
JOB_POLL = 0.2


def names_unchecked(remote: Remote) -> bool:
    """Whether this remote's objects are named through commands.unchecked_fs: S3 alone looks up each object it
    reads, deletes or copies, and checks each copy, with requests of their own (copy_many, delete_files)."""
    return remote.provider == s3.NAME


def missing(exc: RcloneError) -> bool:
    """True if rclone said the folder (or the bucket) is not there: its exit code for a run, its error for an rc
    call (which has none)."""
    if exc.rclone_exit_code is None:
        return "directory not found" in str(exc)
    return exc.rclone_exit_code == EXIT_DIR_NOT_FOUND


@dataclasses.dataclass
class RcloneJob:
    """One background transfer in the rcd (`_async`): its job id, and progress, cancel and wait.

    While it runs, the rcd is held (not stopped for idleness); `wait` or `cancel` releases it. It runs outside
    the remote's lock. rclone forgets a finished job after --rc-job-expire-duration (60 s by default): wait
    for it, or ask its status, within that time.
    """

    store: RcloneStore
    id: int
    what: str
    # The rcd instance that runs the job. Job ids start again at 1 in a new rcd (one started after the old one
    # died), where this id names some other call's job: that must never read as this transfer's success.
    execute_id: str = ""
    _held: bool = True

    def _release(self) -> None:
        if self._held:
            self._held = False
            self.store.rclone.rcd.release()

    def status(self) -> dict:
        """rclone's job/status answer (`finished`, `success`, `error`); a job of an rcd that is gone (or that
        forgot it) is a failed one. A finished job releases the rcd."""
        gone = {"finished": True, "success": False, "error": f"{self.what}: rclone rcd stopped meanwhile"}
        try:
            status = self.store.rc(commands.job_status(self.id), self.what)
        except RcloneError as exc:
            if "job not found" not in str(exc):
                raise
            status = gone
        if self.execute_id and status.get("executeId", self.execute_id) != self.execute_id:
            status = gone
        if status.get("finished"):
            self._release()
        return status

    def progress(self) -> tuple[int, int]:
        """(bytes done, bytes in all; 0 while unknown)."""
        stats = self.store.rc(commands.job_stats(self.id), self.what)
        return int(stats.get("bytes", 0)), int(stats.get("totalBytes", 0))

    def cancel(self) -> None:
        try:
            self.store.rc(commands.job_stop(self.id), self.what)
        finally:
            self._release()

    def wait(self, timeout: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        """Wait for the job to end; raise RcloneError if it failed (or TimeoutError after `timeout`)."""
        deadline = None if timeout is None else clock() + timeout
        while True:
            try:
                status = self.status()
            except RcloneError:
                self._release()  # the rcd died, or forgot the job: it is not running any more
                raise
            if status.get("finished"):
                self._release()
                if not status.get("success"):
                    raise RcloneError(f"{self.what} failed: {status.get('error') or 'the job failed'}",
                                      exit_code=None, retryable=True)
                return
            if deadline is not None and clock() >= deadline:
                raise TimeoutError(f"{self.what}: job {self.id} still running after {timeout} s")
            time.sleep(JOB_POLL)


class RcloneStore:
    """One remote's bucket folder through one Rclone (engine/store.py says what each verb promises)."""

    def __init__(self, rclone: Rclone, remote: Remote, lock: FileLock, scratch: Callable[[], Path], *,
                 retry: RetryPolicy = RetryPolicy()):
        self.rclone = rclone
        self.remote = remote
        self.display = remote.display
        self.lock = lock
        self._scratch = scratch
        self.retry = retry  # the engine sets its policy for after the start phases (engine/core.py)

    # -- how calls are made ---------------------------------------------------------------------------

    def run(self, argv, what: str, *, retry: bool = True, before: Callable[[], None] | None = None,
            **kwargs) -> RunResult:
        """One rclone run (rclone/runner.py) under the lock; retried unless `retry` is False. `before` is
        called under the lock before each attempt."""
        def once() -> RunResult:
            with self.lock.held():
                if before is not None:
                    before()
                return self.rclone.run(argv, what=what, **kwargs)
        return retrying(once, what, self.retry) if retry else once()

    def rc(self, call: tuple[str, dict], what: str) -> dict:
        """One call to the rcd (rclone/rcd.py) under the lock, retried."""
        def once() -> dict:
            with self.lock.held():
                return self.rclone.rc(call, what=what)
        return retrying(once, what, self.retry)

    def names_file(self, name: str, names: Iterable[str]) -> Path:
        """A list file for rclone (one name a line) in the private state dir."""
        path = self._scratch() / f"{self.remote.name}-{name}.txt"
        try:
            path.write_text("".join(f"{n}\n" for n in names))
        except OSError as exc:  # a full or read-only state disk: the changes stay pending and are retried
            raise RcloneError(f"cannot write to the state directory {path.parent} ({exc.strerror})",
                              exit_code=None, retryable=True) from exc
        return path

    # -- the verbs ------------------------------------------------------------------------------------

    def list(self, folder: str = "", *, missing_ok: bool = True) -> dict[str, Version]:
        """{name: (size, server time)} of every file under `folder` ("" the whole bucket folder, the manifest
        included, noise left out), from LIST requests only. A folder that is not there is an empty one, or
        with `missing_ok=False` an RcloneError (`missing` says so)."""
        if not folder:
            try:
                run = self.run(commands.snapshot(self.remote.path()), "listing the bucket folder", quiet=True,
                               parse=read_listing)
            except RcloneError as exc:
                if missing_ok and missing(exc):
                    return {}
                raise
            return run.parsed
        answer = self.rc(commands.list_folder(self.remote.path(), folder), "checking the bucket")
        # operations/list names each entry from the bucket folder's root, `folder/` included.
        return {e["Path"]: entry_version(e) for e in answer.get("list") or [] if not e.get("IsDir")}

    def sizes(self, folder: str) -> dict[str, int]:
        """{name: size} of every object under `folder` (named from the bucket folder's root), LIST requests
        only: no modtime, so no HEAD per object on S3. A folder that is not there is an empty one."""
        call, what = commands.list_sizes(self.remote.path(), folder), "listing the bucket folder"
        try:
            with self.lock.held():
                answer = self.rclone.rc(call, what=what)
        except RcloneError as exc:
            # Bucket stores list a missing folder as empty; stores with real folders (local, SFTP) say so.
            if missing(exc):
                return {}
            answer = self.rc(call, what)  # anything else is retried as every call is
        return {e["Path"]: int(e["Size"]) for e in answer.get("list") or [] if not e.get("IsDir")}

    def stat(self, names: Iterable[str]) -> dict[str, Version]:
        """{name: (size, rclone's modtime)} of these objects now, one HEAD each; missing ones are left out."""
        names = list(names)
        if not names:
            return {}
        files = self.names_file("stat", names)
        answer = self.rc(commands.stat_files(self.remote.path(), files), "checking the bucket")
        wanted = set(names)
        return {e["Path"]: entry_version(e) for e in answer.get("list") or []
                if not e.get("IsDir") and e["Path"] in wanted}

    def upload(self, source: Path, names: Iterable[str], *, retry: bool = True, follow_links: bool = False) -> None:
        """Upload exactly these names from the upload view `source` (local/upload_view.py): its links followed
        with `follow_links`, else uploaded as link objects. `retry=False`: one attempt, whatever the policy (a
        batch that failed is tried again file by file)."""
        files = self.names_file("upload-links" if not follow_links else "upload", names)
        call = commands.copy_files(source, self.remote.path(), files, follow_links=follow_links)
        if retry:
            self.rc(call, "push")
        else:
            with self.lock.held():
                self.rclone.rc(call, what="push")

    def download(self, names: Iterable[str], into: Path) -> None:
        """Download exactly these objects into the folder `into` (a staging folder; link objects as links)."""
        files = self.names_file("download", names)
        self.rc(commands.download_files(self.remote.path(), into, files), "pull")

    def delete(self, names: Iterable[str]) -> None:
        """Delete exactly these objects."""
        files = self.names_file("delete", names)
        self.rc(commands.delete_files(self.remote.path(), files, unchecked=self._s3), "delete")

    def read(self, name: str, what: str, head: int | None = None) -> str | None:
        """The content of one small object (one GET), its first `head` bytes only if given; None if it is not
        there."""
        try:
            return self.run(commands.cat(self.remote.path(name), head=head), what, quiet=True).output
        except RcloneError as exc:
            if exc.retryable:
                raise
            return None

    def write(self, name: str, text: str, what: str) -> None:
        """Write one small object (one PUT) from a private scratch copy."""
        folder = self._scratch() / f"{self.remote.name}-write"
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        files = self.names_file("write", [name])
        self.rc(commands.upload_small(folder, self.remote.path(), files), what)

    def copy(self, source: str, target: str) -> None:
        """A server-side copy of one object to another name (no download, no upload)."""
        self.rc(commands.copy_object(self.remote.path(), source, target), "copying in the bucket")

    def copy_many(self, names: Iterable[str], source_folder: str, target_folder: str) -> None:
        """Server-side copies of `source_folder/name` to `target_folder/name` (16 at a time)."""
        files = self.names_file("copy", names)
        self.rc(commands.copy_many(self.remote.path(), source_folder, target_folder, files,
                                   unchecked=self._s3), "copying in the bucket")

    def move_many(self, names: Iterable[str], source_folder: str, target_folder: str) -> None:
        """Server-side moves of `source_folder/name` to `target_folder/name` (a copy, then the source deleted)."""
        files = self.names_file("move", names)
        self.rc(commands.move_many(self.remote.path(), source_folder, target_folder, files,
                                   unchecked=self._s3), "deleting into the trash")

    @property
    def _s3(self) -> bool:
        return names_unchecked(self.remote)

    def start_upload(self, source: Path, name: str) -> RcloneJob:
        """Upload one (large) file from the upload view `source` (its link followed) as a background job;
        return at once."""
        return self._start(commands.transfer_file(commands.read_through(source), name, self.remote.path(), name),
                           f"uploading {name}")

    def start_download(self, name: str, into: Path) -> RcloneJob:
        """Download one (large) object into the folder `into` as a background job; return at once."""
        return self._start(commands.transfer_file(self.remote.path(), name, str(into), name),
                           f"downloading {name}")

    def _start(self, call: tuple[str, dict], what: str) -> RcloneJob:
        self.rclone.rcd.hold()
        try:
            answer = self.rc(call, what)
        except BaseException:
            self.rclone.rcd.release()
            raise
        return RcloneJob(self, int(answer["jobid"]), what, str(answer.get("executeId", "")))

    # -- what the restore needs besides ---------------------------------------------------------------

    def hashes(self, names: Iterable[str]) -> dict[str, str | None]:
        """{name: MD5 or None} of these objects."""
        files = self.names_file("hash", names)
        run = self.run(commands.hash_files(self.remote.path(), files), "checking the bucket", quiet=True)
        return {e["Path"]: (e.get("Hashes") or {}).get("md5") for e in json.loads(run.output or "[]")}

    def is_empty(self) -> bool:
        """No object at all under the bucket folder (noise and heartbeats count): one level listed."""
        try:  # through the rcd: the restore's first push uses it too, and a start into an empty folder
            return not self.rc(commands.list_top_call(self.remote.path()), "listing the bucket folder").get("list")
        except RcloneError as exc:
            if not missing(exc):
                raise
            return True

    def check_bucket(self) -> None:
        """One listing of the bucket's top level: raise RcloneError if it is not there or refused."""
        self.run(commands.list_top(self.remote.bucket_path()), "checking the bucket", quiet=True)

    def make_folder(self) -> None:
        """Create the (empty) bucket folder where folders exist: on an object store there is nothing to create
        once check_bucket or the listing has seen the bucket, and `rclone mkdir` would cost a process and a
        request at every start into an empty folder."""
        if not self.remote.has_folders:
            return
        self.run(commands.mkdir(self.remote.path()), "creating the bucket folder", quiet=True)

    def copy_all_into(self, target: Path, *, only_missing: bool, excludes: tuple[str, ...], kept: Iterable[str],
                      on_stats: Callable[[dict], None], max_size: int | None = None) -> RunResult:
        """The restore's one bulk copy of the bucket folder into `target` (never deletes), without the objects
        `excludes` (the rest of the listing, `kept`, lets whole folders be left out by one rule); `max_size`:
        only the files of at most that many bytes (the large ones come after JupyterLab has started)."""
        exclude_from = None
        if excludes:  # in a file: one --exclude per name overflowed argv at a few MB of names (E2BIG)
            exclude_from = self._scratch() / f"{self.remote.name}-excludes.txt"
            exclude_from.write_text(commands.exclude_lines(excludes, kept))
        argv = commands.restore(self.remote.path(), target, only_missing=only_missing, exclude_from=exclude_from,
                                max_size=max_size)
        return self.run(argv, "restore", on_stats=on_stats)
