"""The large lane: one large file at a time uploads as a background job of the rcd, beside the small lane.

Driven by the syncer's thread (daemon/syncer.py), which stays the only one to drive its Engine: it starts a job,
asks its status every POLL seconds between its own pushes, and stops it. The rules (docs/design.md, "Lanes"):
- a file is pending until its job succeeded (durable means acknowledged); the change set holds it meanwhile;
- a newer version of the file in flight (any write, close or rename of it) stops the job; the file is queued
  again, and its next upload starts only after the stopped job has ended (never two uploads of one path);
- an attempt that was cut short (stopped, or failed because the file changed while rclone read it) makes the
  file wait SHARE times that attempt's duration while it keeps changing (model/lanes.py); closed or quiet, it
  goes at once;
- a job that failed otherwise is retried after the syncer's retry interval, doubling, like any failed push.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from rclone_jupyter.engine.large import LargeUpload
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.logs import human_size
from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.model.lanes import retry_after
from rclone_jupyter.rclone.rcd import changed_while_read

log = logging.getLogger(__name__)

POLL = 0.1  # seconds between status calls (a local HTTP call to the rcd each)
MAX_WAIT = 60.0
# What a stopped attempt cost is not the time it ran: what it had handed to the network (socket buffers, a few
# MB) still goes out after it is stopped. So an attempt counts as long as its whole file takes at the uplink's
# rate, measured from the lane's last upload that landed (before the first, a slow home uplink's 1 MiB/s).
FIRST_RATE = 1024 * 1024


class LargeLane:
    def __init__(self, engine, changes: ChangeSet, clock: Callable[[], float], retry_interval: float):
        self.engine = engine
        self.changes = changes
        self.clock = clock
        self.retry_interval = retry_interval
        self.current: LargeUpload | None = None
        self.stopping = False  # job/stop was sent for the current job
        self.superseded = False  # a newer version of the current file appeared
        self.next_poll: float | None = None
        self.not_before: dict[str, float] = {}  # path -> earliest next try while it keeps changing
        self.retry_at: float | None = None  # after a failure that was not the file's fault
        self._wait = retry_interval
        self.last_error: str | None = None
        self.rate = float(FIRST_RATE)  # bytes per second of the last upload that landed

    @property
    def path(self) -> str | None:
        return self.current.rel if self.current is not None else None

    def ready(self, now: float) -> bool:
        """The lane can take a file now."""
        return self.current is None and (self.retry_at is None or now >= self.retry_at)

    def held(self, rel: str, now: float) -> bool:
        return now < self.not_before.get(rel, now)

    def start(self, rel: str) -> bool:
        """Start the upload of `rel`; False when it is no plain upload (the small lane's push takes it)."""
        upload = self.engine.large.start(rel)
        if upload is None:
            return False
        self.changes.take_one(rel)
        self.current, self.stopping, self.superseded = upload, False, False
        self.next_poll = self.clock() + POLL
        log.info("uploading %s (%s) in the background to %s", rel, human_size(upload.version[0]),
                 self.engine.remote.display)
        return True

    def poll(self) -> None:
        """Ask the current job how it goes; stop it if a newer version appeared; settle it if it ended."""
        upload = self.current
        if upload is None:
            return
        self.next_poll = self.clock() + POLL
        try:
            status = upload.job.status()
            if self.superseded and not self.stopping and not status.get("finished"):
                upload.job.cancel()  # asked only of the rcd that runs the job (its status checked that)
                self.stopping = True
        except RcloneError as exc:
            if self.engine.rclone.rcd.alive():
                # The call failed but the rcd runs, and so may the job: never start a second upload of the file
                # while it might. Ask again at the next poll.
                log.debug("asking about the upload of %s failed (%s); asking again", upload.rel, exc)
                return
            self._ended(upload, ok=False, error=str(exc))  # the rcd died (or was killed): the job is gone too
            return
        if status.get("finished"):
            self._ended(upload, ok=bool(status.get("success")), error=status.get("error") or "")

    def drop(self) -> None:
        """Forget the current upload (after an unexpected error): its file stays pending."""
        upload, self.current, self.next_poll = self.current, None, None
        if upload is not None:
            upload.ended()
            self.changes.finish_one(upload.rel, durable=False)

    def _ended(self, upload: LargeUpload, *, ok: bool, error: str) -> None:
        upload.ended()
        self.current = None
        self.next_poll = None
        now = self.clock()
        took = now - upload.started
        if ok and took > 0:
            self.rate = max(upload.version[0] / took, 1.0)
        if ok and not self.superseded:
            self.engine.large.finish(upload)
            self.changes.finish_one(upload.rel, durable=True)
            self.not_before.pop(upload.rel, None)
            self._wait, self.retry_at, self.last_error = self.retry_interval, None, None
            log.info("%s (%s) is saved to %s (%.1f s in the background)", upload.rel,
                     human_size(upload.version[0]), self.engine.remote.display, took)
            return
        if ok:  # it landed, but a newer version is already queued: know what landed, send the newer one
            self.engine.large.finish(upload)
        elif self.superseded or changed_while_read(error):
            self.engine.large.transfers.cut_short({upload.key: upload.version})  # what lands of it is ours
        self.changes.finish_one(upload.rel, durable=False)
        if self.superseded or changed_while_read(error):
            # Not the storage's fault: the file changed under the upload. It goes again once closed or quiet,
            # or after a while if it keeps changing.
            self.not_before[upload.rel] = retry_after(now, max(took, upload.version[0] / self.rate))
            if os.path.lexists(self.engine.data_dir / upload.rel):
                log.info("%s changed while it was uploaded to %s; it is sent again once it is closed or quiet",
                         upload.rel, self.engine.remote.display)
            else:  # the delete is queued: the next push sends it, and nothing of this upload shows
                log.info("%s was deleted while it was uploaded to %s; its upload is stopped", upload.rel,
                         self.engine.remote.display)
            return
        self.retry_at = now + self._wait
        self._wait = min(self._wait * 2, MAX_WAIT)
        self.last_error = f"uploading {upload.rel} failed: {error}"
        log.warning("uploading %s to %s failed (%s); kept pending, next try in %.1f s", upload.rel,
                    self.engine.remote.display, error[:300], self.retry_at - now)
