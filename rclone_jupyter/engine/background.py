"""The large files of a start, restored after JupyterLab has started: smallest first, each placed whole.

The start (engine/restore.py) restores every file of at most RCLONE_JUPYTER_LARGE_FILE bytes (8 MiB) before
JupyterLab starts and leaves the larger ones to come (model/to_come.py). This thread brings them with its own rclone, never the
push path's (a save does not wait behind a model): `rclone copy` of exactly those objects into a private
staging folder inside the data folder, smallest first; a file shows there under its final name only whole,
and rclone logs it "Copied", so each one is moved into place as soon as it is whole: never over a file the
user made meanwhile (that name is the push's: both versions are kept), never through a link (tree.place).

A failed run is tried again (the files that arrived stay); a stop kills the run, and what is left in the
staging folder is thrown away (tree.clear_staging at the next start, if the daemon was killed): nothing is
lost, because nothing still to come was ever in `known`, so nothing was deleted or overwritten for it.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from rclone_jupyter.engine.refusals import one_object_refused, refusal
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.tree import STAGING_PREFIX, place
from rclone_jupyter.logs import human_size
from rclone_jupyter.model.known import LINK_SUFFIX, Known, local_name
from rclone_jupyter.rclone import commands
from rclone_jupyter.rclone.runner import Rclone

log = logging.getLogger(__name__)

FIRST_RETRY = 1.0
MAX_RETRY = 60.0


class BackgroundRestore(threading.Thread):
    """Bring the engine's `to_come` files in. `on_progress(bytes done, files done)` counts this stage only."""

    def __init__(self, engine, rclone: Rclone, *, on_progress: Callable[[int, int], None] | None = None,
                 on_done: Callable[[], None] | None = None):
        super().__init__(name=f"restore-later-{engine.remote.name}", daemon=True)
        self.engine = engine
        self.rclone = rclone
        self.on_progress = on_progress
        self.on_done = on_done
        self._stopping = threading.Event()
        self._placed_bytes = 0
        self._placed_files = 0
        self._staging: Path | None = None

    def stop(self) -> None:
        """Kill the run in flight and end the thread (files already placed stay; the rest stays in the bucket)."""
        self._stopping.set()
        self.rclone.kill()

    def run(self) -> None:
        to_come = self.engine.to_come
        wait = FIRST_RETRY
        started = time.monotonic()
        while to_come and not self._stopping.is_set():
            waiting = to_come.waiting()
            try:
                self._one_run(waiting)
            except RcloneError as exc:
                if self._stopping.is_set():
                    break
                if self._refused(exc):
                    left = to_come.waiting()
                    # rclone copied every other file: what is left, the storage refuses (a 403 on those objects
                    # while the credentials work). Skipped as a reconcile skips them (engine/bucket.py, refuse),
                    # not tried again and again, and no ERROR as if it needed a human first.
                    self.engine.bucket.refuse({key: refusal(exc) for key in left}, left)
                    to_come.drop(left)
                    continue
                # A blip is retried quietly; refused credentials or a missing bucket need a human (ERROR).
                log.log(logging.WARNING if exc.retryable else logging.ERROR,
                        "restoring the large files from %s failed (%s); %d file(s) still to come, next try in %.0f s",
                        self.engine.remote.display, exc, len(to_come.waiting()), wait)
                self._stopping.wait(wait)
                wait = min(wait * 2, MAX_RETRY)
                continue
            # The run succeeded: what it did not bring is gone from the bucket (deleted there meanwhile).
            to_come.drop(waiting)
        if not self._stopping.is_set():
            # What arrived, not what was expected: a file the storage refused or one deleted there meanwhile
            # did not come.
            log.info("restore from %s done: the %d large file(s) (%s) arrived in %.1f s after JupyterLab started",
                     self.engine.remote.display, self._placed_files, human_size(self._placed_bytes),
                     time.monotonic() - started)
            if self.on_done is not None:
                self.on_done()

    def _refused(self, exc: RcloneError) -> bool:
        try:
            return one_object_refused(exc, self.engine.bucket.store)
        except RcloneError:
            return False  # the storage down just now: retried as any failure

    def _one_run(self, waiting: dict) -> None:
        data_dir = self.engine.data_dir
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=data_dir))
        self._staging = staging
        keys = sorted(waiting, key=lambda k: (waiting[k][0], k))
        files = self.engine.state.scratch() / f"{self.engine.remote.name}-later.txt"
        files.write_text("".join(f"{k}\n" for k in keys))

        def on_message(record: dict) -> None:
            # "Copied (new)", or "Multi-thread Copied (new)" for a file over --multi-thread-cutoff (256 MiB).
            if "Copied (" in str(record.get("msg", "")) and record.get("object"):
                self._arrived(str(record["object"]), staging, waiting)

        def on_stats(stats: dict) -> None:
            if self.on_progress is not None:
                # Bytes of files still in flight count too: the progress moves while a large file arrives.
                in_flight = sum(int(t.get("bytes", 0)) for t in stats.get("transferring") or [])
                self.on_progress(self._placed_bytes + in_flight, self._placed_files)

        try:
            self.rclone.run(commands.restore_later(self.engine.remote.path(), staging, files),
                            what="restoring the large files", on_message=on_message, on_stats=on_stats, quiet=True)
            # The run succeeded: every file in the staging folder is whole, whether or not its record was seen.
            for key in keys:
                self._arrived(key, staging, waiting)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _arrived(self, key: str, staging: Path, waiting: dict) -> None:
        """One file is whole in the staging folder: move it into place if its name still waits for it."""
        staged = staging / local_name(key)
        engine = self.engine

        def put() -> Known | None:
            try:
                st = os.lstat(staged)
            except FileNotFoundError:
                return None
            if not stat.S_ISLNK(st.st_mode):
                os.chmod(staged, engine.manifest.manifest.wanted(key))  # it appears with its mode, not before it
            rel = local_name(key)
            if not place(engine.data_dir, staged, rel, replace=False):
                log.info("%s was written here before its version in %s arrived: both are kept (the bucket's as a "
                         "conflict copy)", rel, engine.remote.display)
                return None
            size = len(os.fsencode(os.readlink(engine.data_dir / rel))) if key.endswith(LINK_SUFFIX) else st.st_size
            return Known(size, st.st_mtime_ns, waiting.get(key))

        if engine.to_come.settle(key, put):
            self._placed_files += 1
            self._placed_bytes += waiting.get(key, (0, 0))[0]
            if self.on_progress is not None:
                self.on_progress(self._placed_bytes, self._placed_files)
