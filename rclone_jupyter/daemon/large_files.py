"""The large files of a start, once JupyterLab has started: one background restore per cloud that has some.

What the user sees of them: the status's `restore` ("Restoring 1.2 / 4.0 GiB" in the status item, `status`,
`health`; the first paths still to come), and TO_COME_FILE in the state folder, every path still to come,
which `rclone-jupyter wait PATH` reads (daemon/wait.py). The transfers themselves: engine/background.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from rclone_jupyter.daemon.status import MAX_LISTED, TO_COME_FILE, StatusBoard
from rclone_jupyter.engine.background import BackgroundRestore
from rclone_jupyter.model.known import local_name
from rclone_jupyter.rclone.runner import Rclone
from rclone_jupyter.state import StateDir, write_private

log = logging.getLogger(__name__)


class LargeFiles:
    def __init__(self, engines: list, board: StatusBoard, state: StateDir, make_rclone: Callable[[], Rclone]):
        self.engines = [engine for engine in engines if engine.to_come]
        self.board = board
        self.state = state
        self.make_rclone = make_rclone  # each its own rclone (the same flags as every other, --bwlimit too)
        self.threads: list[BackgroundRestore] = []

    def start(self) -> None:
        for engine in self.engines:
            self._report(engine, 0, 0)
            # Its own rclone: never the push path's rcd, so a save does not wait behind a model.
            thread = BackgroundRestore(engine, self.make_rclone(),
                                       on_progress=lambda done, files, engine=engine: self._report(engine, done, files),
                                       on_done=self._done)
            self.threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Kill the transfers in flight (what did not arrive stays in the bucket, for the next start)."""
        for thread in self.threads:
            thread.stop()
        for thread in self.threads:
            thread.join(timeout=5)

    def _report(self, engine, done: int, files: int) -> None:
        first_bytes, first_files = engine.restorer.first
        total_bytes, total_files = engine.restorer.total
        to_come = sorted(local_name(key) for key in engine.to_come.waiting())
        self.board.set(restore={"state": "running", "remote": engine.remote.name,
                                "bytes_done": first_bytes + done, "bytes_total": total_bytes,
                                "files_done": first_files + files, "files_total": total_files,
                                "to_come": to_come[:MAX_LISTED], "to_come_count": len(to_come)})
        try:
            write_private(self.state.path / TO_COME_FILE, "".join(path + "\n" for path in to_come))
        except OSError as exc:  # a full state disk: `wait` goes on reading the last list
            log.debug("cannot write %s: %s", TO_COME_FILE, exc)

    def _done(self) -> None:
        for engine in self.engines:  # what the storage refused to hand over shows at once (engine/bucket.py)
            self.board.remote(engine.remote.name, **engine.skipped_shown())
        if any(engine.to_come for engine in self.engines):
            return
        restore = self.board.snapshot().get("restore") or {}
        self.board.set(restore={**restore, "state": "done", "bytes_done": restore.get("bytes_total"),
                                "files_done": restore.get("files_total"), "to_come": [], "to_come_count": 0})
