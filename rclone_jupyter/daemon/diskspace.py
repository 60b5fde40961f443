"""Watch the free space of the data folder's disk while running, and say so when it is full.

When a user fills the disk, their saves in JupyterLab fail (ENOSPC): that is not something the sync can
fix, but the status must say why, and say when it is over. The sync itself keeps running: what is already
in the bucket is never touched by a full disk here, and what is written once space is back is saved as usual.
One statvfs every CHECK_INTERVAL seconds; no request to any bucket.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from rclone_jupyter.daemon.status import StatusBoard
from rclone_jupyter.local.tree import free_bytes

log = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0
FULL_BELOW = 1024 * 1024  # bytes free under which the disk counts as full (a notebook save needs more)


class DiskMonitor(threading.Thread):
    def __init__(self, data_dir: Path, board: StatusBoard, *, interval: float = CHECK_INTERVAL):
        super().__init__(name="disk-space", daemon=True)
        self.data_dir = data_dir
        self.board = board
        self.interval = interval
        self.full = False
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.check()

    def check(self) -> None:
        try:
            free = free_bytes(self.data_dir)
        except OSError:
            return  # the folder is being replaced or unmounted: nothing to say
        full = free < FULL_BELOW
        if full and not self.full:
            message = (f"the data folder's disk is full ({free // 1024} KiB free in {self.data_dir}): saving files "
                       "fails in JupyterLab until you delete or move something. Everything already saved is safe "
                       "in the bucket.")
            log.error("ERROR: %s", message)
            self.board.set(disk={"full": True, "free": free, "message": message})
        elif not full and self.full:
            log.info("the data folder's disk has space again (%d MiB free): saving works again", free // (1024 * 1024))
            self.board.set(disk={"full": False, "free": free, "message": None})
        self.full = full

    def stop(self) -> None:
        self._stop_event.set()
