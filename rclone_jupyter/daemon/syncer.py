"""One worker thread per remote: waits for debounced changes, pushes them, reconciles, retries.

It is the only thread that drives its Engine, so runs against one remote never overlap inside the process
(the engine's file lock covers other processes). Failed changes stay pending and are merged into the
next run (docs/design.md, invariant 4).

It is also the one owner of retries while `start` runs: the engine, built for it (daemon/supervisor.py,
make_engines), makes one attempt per call once its start phases are done (ONE_ATTEMPT),
and a failed run puts its changes back and is tried again after RCLONE_JUPYTER_RETRY_INTERVAL, doubling up
to MAX_RETRY_WAIT, with the status saying `retrying` (a transient error) or `error` (a human must act).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from rclone_jupyter import memory
from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.model.debounce import Debouncer
from rclone_jupyter.model.known import covered
from rclone_jupyter.engine.core import Engine
from rclone_jupyter.logs import human_size
from rclone_jupyter.engine.push import PushResult
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.daemon.lanes import LargeLane
from rclone_jupyter.daemon.presence import Heartbeat, Presence
from rclone_jupyter.model.lanes import is_large, retry_after, smallest_first
from rclone_jupyter.rclone.rcd import changed_while_read
from rclone_jupyter.config.settings import Timing
from rclone_jupyter.daemon.status import StatusBoard, iso, now_iso

log = logging.getLogger(__name__)

MAX_RETRY_WAIT = 60.0
# Shown as pending while the watcher lost track (a rescan is due): nothing counts as saved until it ran.
RESCAN = "(the whole data folder: changes may have been missed; rescanning)"
LOUD_AFTER = 3  # consecutive failed runs before a transient error is logged as an ERROR
STOPPING = "rclone-jupyter is stopping: its final flush saves what is pending"
HEARTBEAT_END = 1.0  # at a clean stop, how long a beat in flight may take to end before its object is removed


class ShownPending:
    """A remote's pending changes as the status shows them (a daemon/status.PendingSource): the paths that have
    waited longest first, read in O(listed) however large a burst, and RESCAN ahead of them while the watcher
    has lost track."""

    def __init__(self, changes: ChangeSet):
        self.changes = changes

    def count(self) -> int:
        return self.changes.count() + (1 if self.changes.unknown() else 0)

    def first(self, limit: int) -> list[str]:
        if self.changes.unknown():
            return [RESCAN, *self.changes.oldest_paths(limit - 1)]
        return self.changes.oldest_paths(limit)

    def paths(self) -> set[str]:
        pending = self.changes.pending()
        return pending | {RESCAN} if self.changes.unknown() else pending


class RemoteSyncer(threading.Thread):
    def __init__(self, engine: Engine, changes: ChangeSet, timing: Timing, board: StatusBoard, *,
                 clock: Callable[[], float] = time.monotonic):
        """`changes`: the change set the engine was built with (its `pending_here`)."""
        super().__init__(name=f"sync-{engine.remote.name}", daemon=True)
        self.engine = engine
        self.timing = timing
        self.board = board
        self.clock = clock
        self.changes = changes
        self._root = str(engine.data_dir)
        self._shown = ShownPending(changes)
        self.debouncer = Debouncer(timing.quiet_period, timing.max_delay, clock)
        self._cond = threading.Condition()
        self._stopping = False
        self._abandoned = False
        self._requests: list[Future] = []  # full syncs asked for (sync --once)
        # Full syncs done but for paths still pending after their push (a large file on its way in the large
        # lane, a file changed again meanwhile, one still being written): answered when those have landed, by
        # whichever push or large upload lands the last of them, or with the error that stopped it.
        self._awaiting: list[tuple[Future, set[str]]] = []
        self._plans: list[Future] = []  # dry runs asked for (sync --once --dry-run)
        self._retry_at: float | None = None
        self._retry_wait = timing.retry_interval
        self._failures = 0  # consecutive failed runs
        self._next_reconcile = self._reconcile_after()
        self.flushed_ok = False
        # The large lane (daemon/lanes.py): one large file at a time as a background job, beside the pushes.
        self.lane = LargeLane(engine, self.changes, clock, timing.retry_interval)
        self._writing: set[str] = set()  # paths whose last event was not a finished write (still being written)
        self._deferred: set[str] = set()  # due, but waiting after a cut-short attempt: they go when the wait ends
        self._lane_waiting = False  # large files wait for the large lane to be free
        # A heartbeat in the bucket folder, so two containers on one folder see each other (daemon/presence.py),
        # on a thread of its own: paused while the bucket does not answer (a retry is due).
        self.heartbeat = (Heartbeat(Presence(engine, timing.heartbeat_interval), lambda: self._retry_at is not None)
                          if timing.heartbeat_interval > 0 else None)

    # -- called from other threads --------------------------------------------------------------------

    def note(self, rel: str, finished: bool = False) -> None:
        """A path changed in the data folder; `finished`: it will stay as it is (closed, renamed, deleted)."""
        self.changes.add(rel)
        with self._cond:
            self.debouncer.note(rel, finished)
            if finished:
                self._writing.discard(rel)
            else:
                self._writing.add(rel)
            if rel == self.lane.path:
                self.lane.superseded = True  # a newer version: the job in flight is stopped (at its next poll)
                self.lane.next_poll = self.clock()
            self._cond.notify()
        self._publish()

    def note_overflow(self) -> None:
        self.changes.mark_overflow()
        with self._cond:
            self.debouncer.note()
            self._cond.notify()
        self._publish()

    def request_full_sync(self) -> Future:
        """Push everything pending, then reconcile; the future's result is None or the error text."""
        future: Future = Future()
        with self._cond:
            if self._stopping:
                future.set_result(STOPPING)
                return future
            self._requests.append(future)
            self._cond.notify()
        return future

    def request_plan(self) -> Future:
        """What a full sync would do now, changing nothing; the future's result is (lines, None) or
        (None, the error text). Computed on this thread, the one that drives the engine."""
        future: Future = Future()
        with self._cond:
            if self._stopping:
                future.set_result((None, STOPPING))
                return future
            self._plans.append(future)
            self._cond.notify()
        return future

    def stop(self) -> None:
        """Flush everything pending, then end the thread (the caller joins it under a deadline)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def abandon(self) -> None:
        """End the thread without pushing more (the flush deadline passed, or a second signal)."""
        with self._cond:
            self._stopping = self._abandoned = True
            self._cond.notify()

    def pending(self) -> set[str]:
        return self.changes.pending()

    # -- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.start()
        try:
            while True:
                work = self._wait_for_work()
                if work == "exit":
                    self._leave()
                    return
                if work == "plan":
                    self._plan()
                    continue
                self._do(work)
        finally:
            if self.heartbeat is not None:
                self.heartbeat.end(0)  # ended already at a clean exit; here after a crash of this loop too
            self.engine.rclone.close()  # the push path's rcd, if it runs: nothing is in flight any more
            with self._cond:
                requests, self._requests = self._requests, []
                plans, self._plans = self._plans, []
                self._stopping = True  # a request from now on is answered at once
            for future in requests:  # asked during the final flush: answered, never left waiting
                future.set_result(STOPPING)
            self._settle_awaiting()  # those whose paths the final flush landed: saved
            self._settle_awaiting(STOPPING)  # the rest
            for future in plans:
                future.set_result((None, STOPPING))

    def _wait_for_work(self) -> str:
        with self._cond:
            while True:
                now = self.clock()
                retry_ready = self._retry_at is None or now >= self._retry_at
                if self._abandoned:
                    return "exit"
                if self.lane.next_poll is not None and now >= self.lane.next_poll:
                    return "lane"
                if self._stopping:
                    if not self.changes.has_queued() and self.lane.current is None:
                        self.flushed_ok = True
                        return "exit"
                    if retry_ready and self._startable(now, stopping=True):
                        return "push"
                elif self._plans:
                    return "plan"
                elif self._requests:
                    return "full"
                elif retry_ready and self._held_due(now):
                    return "push"  # a file that kept changing may be tried again (its wait is over)
                elif retry_ready and self._lane_waiting and self.lane.ready(now):
                    return "push"  # the large lane is free for the next large file
                elif retry_ready and self.changes.has_queued() and (
                        self.debouncer.is_due() or self._retry_at is not None):
                    # After a failure the put-back changes are due at the retry time: no new write is needed
                    # to trigger the retry (the debouncer was reset when the failed run took them).
                    return "push"
                elif retry_ready and self._next_reconcile is not None and now >= self._next_reconcile:
                    return "reconcile"
                self._cond.wait(timeout=self._timeout(now))

    def _startable(self, now: float, stopping: bool = False) -> bool:
        """Something queued can be pushed or started now (the file in the large lane's flight waits for it)."""
        for rel in self.changes.queued():
            if rel == self.lane.path:
                continue
            if stopping or not self._held(rel, now):
                if not self._large(rel) or self.lane.ready(now):
                    return True
        return False

    def _held(self, rel: str, now: float) -> bool:
        return rel in self._writing and self.lane.held(rel, now)

    def _held_due(self, now: float) -> bool:
        """A file that was due while it waited after a cut-short attempt, and whose wait is over."""
        return any(not self._held(rel, now) for rel in self._deferred)

    def _large(self, rel: str) -> bool:
        if self.engine.large is None:
            return False  # bisync mode: every change goes through its bisync run
        try:
            st = os.lstat(os.path.join(self._root, rel))  # as text: a Path per queued path cost more than the lstat
        except OSError:
            return False
        return stat.S_ISREG(st.st_mode) and is_large(st.st_size)

    def _timeout(self, now: float) -> float:
        holds = [self.lane.not_before[rel] for rel in self._deferred if rel in self.lane.not_before]
        moments = [t for t in (self.debouncer.due_at(), self._retry_at, self._next_reconcile,
                               self.lane.next_poll, self.lane.retry_at, min(holds, default=None))
                   if t is not None]
        if not moments:
            return 1.0
        return min(max(min(moments) - now, 0.01), 1.0)

    def _poll_lane(self) -> None:
        was = self.lane.path
        self.lane.poll()
        if was is not None and self.lane.path is None:
            self._lane_waiting = True  # the next large file (or this one again, if it failed) may go now
            self._settle_awaiting(self.lane.last_error)
            self.board.remote(self.engine.remote.name, pending=self._shown, oldest_pending=self._oldest,
                              **({"last_sync": now_iso()} if self.lane.last_error is None else
                                 {"last_error": self.lane.last_error, "last_error_at": now_iso()}))
            with self._cond:
                self._cond.notify()

    def _settle_awaiting(self, error: str | None = None) -> None:
        """Answer the full syncs waiting for paths that are no longer pending, or all of them with `error`."""
        pending, still = self.changes.pending(), []
        for future, paths in self._awaiting:
            if error is not None:
                future.set_result(error)
            elif paths & pending:
                still.append((future, paths & pending))
            else:
                future.set_result(None)
        self._awaiting = still

    def _leave_for_later(self) -> set[str]:
        """Queued paths the small lane's batch must not take now: the file in the large lane's flight, files
        that keep changing and wait after a cut-short attempt, and large files, which go to the large lane (the
        smallest one starts now if the lane is free; a conflict or a link goes with the batch)."""
        now = self.clock()
        leave = {self.lane.path} - {None}
        large: dict[str, int] = {}
        self._deferred.clear()
        self._lane_waiting = False
        for rel in self.changes.queued() - leave:
            if not self._stopping and self._held(rel, now):
                leave.add(rel)
                self._deferred.add(rel)
            elif self._large(rel):
                large[rel] = os.lstat(self.engine.data_dir / rel).st_size
        for rel in smallest_first(large):
            if self.lane.ready(now) and self.lane.start(rel):
                leave.add(rel)
            elif self.lane.current is not None or not self.lane.ready(now):
                leave.add(rel)  # waits for the lane
                self._lane_waiting = True
        return leave

    def _do(self, work: str) -> None:
        if work == "lane":
            try:
                self._poll_lane()
            except Exception:  # noqa: BLE001 - a bug must not stop syncing: the file stays pending
                log.exception("unexpected error in the large upload lane of %s", self.engine.remote.display)
                self.lane.drop()
            return
        requests: list[Future] = []
        if work == "full":
            with self._cond:
                requests, self._requests = self._requests, []
        with self._cond:
            self.debouncer.reset()
        try:
            leave = self._leave_for_later()
        except RcloneError as exc:  # the check before a large upload failed: as a failed push
            self._failed(exc)
            return
        batch_before = self.changes.pending()
        batch = self.changes.take(leave)
        started = self.clock()
        try:
            result = self.engine.push(batch) if batch else None
            self.changes.done()
            if work in ("full", "reconcile") and not (result and result.reconciled):
                # A flush (`sync --once`) and the periodic look: the pending changes are pushed above, then one
                # LIST-only listing brings in what changed elsewhere. Paths changed here since (queued now) are
                # never overwritten or deleted by it.
                pending = self.changes.pending()
                self.engine.reconcile(lambda rel: covered(rel, pending))
                memory.give_back()  # its listing of the whole folder is freed (a million objects: ~250 MB)
                result = result or PushResult(reconciled=True)
            self._succeeded(batch, result, work)
            self._settle_awaiting()  # earlier full syncs whose last paths this push landed
            left = self.changes.pending() & batch_before
            for future in requests:
                if left:
                    self._awaiting.append((future, left))
                else:
                    future.set_result(None)
        except RcloneError as exc:
            self.changes.put_back(getattr(exc, "paths", None))
            self._settle_awaiting(str(exc))
            if changed_while_read(str(exc)):
                self._changed_while_read(batch, exc, self.clock() - started)
                for future in requests:
                    future.set_result(str(exc))
                return
            self._failed(exc)
            for future in requests:
                future.set_result(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not silently stop syncing: keep changes, report
            log.exception("unexpected error while syncing with %s", self.engine.remote.display)
            self.changes.put_back()
            self._failed(exc)
            self._settle_awaiting(f"unexpected error: {exc}")
            for future in requests:
                future.set_result(f"unexpected error: {exc}")

    def _succeeded(self, batch, result: PushResult | None, work: str) -> None:
        self._failures = 0
        self._retry_at = None
        self._retry_wait = self.timing.retry_interval
        fields = {"last_sync": now_iso(), "last_error": None, "last_error_at": None, "state": "ok",
                  "not_saved": self.engine.not_saved_shown(), **self.engine.skipped_shown()}
        if result is not None and result.reconciled:
            fields["last_reconcile"] = fields["last_sync"]
            self._next_reconcile = self._reconcile_after()
        if result is not None and not result.reconciled:
            log.info("synced %d change(s) to %s: %d uploaded (%s), %d deleted, %d unchanged in %.2f s",
                     len(batch.paths), self.engine.remote.display, result.uploaded, human_size(result.bytes),
                     result.deleted, result.skipped, result.seconds)
        self.board.remote(self.engine.remote.name, pending=self._shown, oldest_pending=self._oldest,
                          **fields)

    def _changed_while_read(self, batch, exc: RcloneError, took: float) -> None:
        """A file changed while rclone read it: no failure of the storage. Its changes go again once closed or
        quiet, and while they keep changing only after SHARE times this attempt (model/lanes.py)."""
        log.info("a file changed while it was uploaded to %s; it is sent again once it is closed or quiet (%s)",
                 self.engine.remote.display, str(exc)[:300])
        wait_until = retry_after(self.clock(), took)
        with self._cond:
            for rel in batch.paths:
                self.debouncer.note(rel, finished=rel not in self._writing)
                self.lane.not_before[rel] = wait_until
        self._publish()

    def _failed(self, exc: BaseException) -> None:
        retryable = getattr(exc, "retryable", True)
        wait = 0.5 if self._stopping else self._retry_wait
        self._retry_at = self.clock() + wait
        self._retry_wait = min(self._retry_wait * 2, MAX_RETRY_WAIT)
        self._failures += 1
        pending = self.changes.pending()
        # A blip (a dropped connection, the rcd restarted) is retried quietly; one that lasts is an ERROR.
        level = logging.WARNING if retryable and self._failures < LOUD_AFTER else logging.ERROR
        log.log(level, "%s: sync with %s failed (%s); %d change(s) kept pending, next try in %.1f s%s",
                logging.getLevelName(level), self.engine.remote.display, exc, len(pending), wait,
                "" if retryable else ". This needs fixing: the changes will land once it is fixed")
        self.board.remote(self.engine.remote.name, pending=self._shown, last_error=str(exc),
                          last_error_at=now_iso(), state="retrying" if retryable else "error",
                          oldest_pending=self._oldest)

    def _plan(self) -> None:
        with self._cond:
            plans, self._plans = self._plans, []
        try:
            answer = (self.engine.plan(self.changes.pending()), None)
        except Exception as exc:  # noqa: BLE001 - a dry run only informs: its failure is its answer
            answer = (None, str(exc))
        for future in plans:
            future.set_result(answer)

    def _leave(self) -> None:
        """A clean stop removes this node's heartbeat, unless the bucket did not answer lately or the flush was
        abandoned (no more calls to a bucket that is too slow: the heartbeat goes stale instead)."""
        if self.heartbeat is None:
            return
        quick = self._abandoned or self._retry_at is not None
        # A beat in flight is let finish first, so it cannot land after the delete (HEARTBEAT_END at most).
        ended = self.heartbeat.end(0 if quick else HEARTBEAT_END)
        if quick or not ended:
            return
        try:
            self.heartbeat.presence.leave()
        except Exception as exc:  # noqa: BLE001 - as above
            log.debug("removing the heartbeat from %s failed: %s", self.engine.remote.display, exc)

    def _reconcile_after(self) -> float | None:
        interval = self.timing.reconcile_interval
        return None if interval <= 0 else self.clock() + interval

    def _oldest(self) -> str | None:
        oldest = self.changes.oldest()
        return iso(oldest) if oldest is not None else None

    def _publish(self) -> None:
        # The board reads the pending set when it writes (a few times a second), not at every event: a burst of
        # N new files costs O(N), not O(N^2) (daemon/status.py).
        self.board.remote(self.engine.remote.name, pending=self._shown, oldest_pending=self._oldest)
