"""Who else is syncing this bucket folder: one small heartbeat object per running `start`.

SaladCloud can run an old and a new container on the same bucket folder for a while. Both keep working
and no file is lost (README, 'What you can lose, and when'); this module makes the situation visible.
Each `start` writes `.rclone-jupyter/nodes/<node>.json` in its bucket folder when syncing begins and every
RCLONE_JUPYTER_HEARTBEAT_INTERVAL seconds, lists the others, and warns once for each other node whose
heartbeat is fresh (younger than three intervals). A clean stop deletes its object; a killed node's object
goes stale and is ignored. That folder is never restored or synced (filters.BUCKET_ONLY).

`Heartbeat` beats on a thread of its own, through the rcd (thread-safe): on a slow link a heartbeat takes a few
round trips, and a save must never wait behind it. The syncer pauses it while the bucket does not answer and
calls `leave()` at a clean stop, once the thread has ended.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from rclone_jupyter.rclone import commands
from rclone_jupyter.model.filters import HEARTBEATS
from rclone_jupyter.model.stamps import stamp_ns
from rclone_jupyter.engine.core import Engine
from rclone_jupyter.daemon.status import now_iso

log = logging.getLogger(__name__)

FOLDER = HEARTBEATS
FRESH_INTERVALS = 3  # a heartbeat older than this many intervals is a node that is gone


class Presence:
    def __init__(self, engine: Engine, interval: float, *, clock: Callable[[], float] = time.time):
        self.engine = engine
        self.interval = interval
        self.clock = clock
        self.host = socket.gethostname()
        self.node = f"{self.host}-{uuid.uuid4().hex[:8]}"
        self.started = now_iso()
        self.warned: set[str] = set()

    def _rc(self, call) -> dict:
        # No file lock: these calls touch only this node's own object, through the rcd, beside the engine's.
        return self.engine.rclone.rc(call, what="heartbeat")

    def _folder(self) -> str:
        return self.engine.remote.path(FOLDER)

    def beat(self) -> list[str]:
        """Refresh our heartbeat; warn about every other node seen alive. Return the other live nodes."""
        scratch = self.engine.state.scratch() / f"{self.engine.remote.name}-presence.json"
        scratch.write_text(json.dumps({"node": self.node, "host": self.host, "pid": os.getpid(),
                                       "started": self.started, "interval": self.interval}))
        self._rc(commands.put_file(scratch, self._folder(), f"{self.node}.json"))
        listing = self._rc(commands.list_objects(self._folder())).get("list") or []
        now_ns = int(self.clock() * 1e9)
        fresh_ns = FRESH_INTERVALS * self.interval * 1e9
        others = sorted(
            entry["Name"].removesuffix(".json") for entry in listing
            if entry["Name"] != f"{self.node}.json" and now_ns - stamp_ns(entry["ModTime"]) < fresh_ns
        )
        for other in others:
            if other not in self.warned:
                self.warned.add(other)
                log.warning(
                    "WARNING: another rclone-jupyter (%s) is syncing the same bucket folder %s. Both keep working "
                    "and no file is lost: a file changed on both is kept twice (name.conflict1.ext), a delete "
                    "never removes a version the other one saved, and the other's changes appear here at the "
                    "next full sync. Stop the old container when you can.", other, self.engine.remote.display)
        return others

    def leave(self) -> None:
        """Remove our heartbeat (a clean stop)."""
        self._rc(commands.delete_object(self._folder(), f"{self.node}.json"))


class Heartbeat(threading.Thread):
    """`presence.beat()` at once, then every interval, unless `paused()` (the syncer retries a failed run: no
    request more to a bucket that does not answer). Ends at `end()`."""

    def __init__(self, presence: Presence, paused: Callable[[], bool]):
        super().__init__(name=f"heartbeat-{presence.engine.remote.name}", daemon=True)
        self.presence = presence
        self.paused = paused
        self._ended = threading.Event()

    def run(self) -> None:
        while not self._ended.is_set():
            if not self.paused():
                try:
                    self.presence.beat()
                except Exception as exc:  # noqa: BLE001 - the heartbeat only informs; syncing reports its own errors
                    log.debug("heartbeat in %s failed: %s", self.presence.engine.remote.display, exc)
            self._ended.wait(self.presence.interval)

    def end(self, timeout: float | None = None) -> bool:
        """Stop beating; wait at most `timeout` for a beat in flight. True if the thread has ended."""
        self._ended.set()
        if self.is_alive() and timeout != 0:
            self.join(timeout)
        return not self.is_alive()
