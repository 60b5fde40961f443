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
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future

from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.model.debounce import Debouncer
from rclone_jupyter.model.known import covered
from rclone_jupyter.engine.core import Engine
from rclone_jupyter.logs import human_size
from rclone_jupyter.engine.push import PushResult
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.daemon.presence import Presence
from rclone_jupyter.config.settings import Timing
from rclone_jupyter.daemon.status import StatusBoard, iso, now_iso

log = logging.getLogger(__name__)

MAX_RETRY_WAIT = 60.0
LOUD_AFTER = 3  # consecutive failed runs before a transient error is logged as an ERROR


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
        self.debouncer = Debouncer(timing.quiet_period, timing.max_delay, clock)
        self._cond = threading.Condition()
        self._stopping = False
        self._requests: list[Future] = []  # full syncs asked for (sync --once)
        self._plans: list[Future] = []  # dry runs asked for (sync --once --dry-run)
        self._retry_at: float | None = None
        self._retry_wait = timing.retry_interval
        self._failures = 0  # consecutive failed runs
        self._next_reconcile = self._reconcile_after()
        self.flushed_ok = False
        # A heartbeat in the bucket folder, so two containers on one folder see each other (daemon/presence.py).
        self.presence = Presence(engine, timing.heartbeat_interval) if timing.heartbeat_interval > 0 else None
        self._next_heartbeat: float | None = self.clock() if self.presence else None

    # -- called from other threads --------------------------------------------------------------------

    def note(self, rel: str, finished: bool = False) -> None:
        """A path changed in the data folder; `finished`: it will stay as it is (closed, renamed, deleted)."""
        self.changes.add(rel)
        with self._cond:
            self.debouncer.note(rel, finished)
            self._cond.notify()
        self._publish()

    def note_overflow(self) -> None:
        self.changes.mark_overflow()
        with self._cond:
            self.debouncer.note()
            self._cond.notify()

    def request_full_sync(self) -> Future:
        """Push everything pending, then reconcile; the future's result is None or the error text."""
        future: Future = Future()
        with self._cond:
            self._requests.append(future)
            self._cond.notify()
        return future

    def request_plan(self) -> Future:
        """What a full sync would do now, changing nothing; the future's result is (lines, None) or
        (None, the error text). Computed on this thread, the one that drives the engine."""
        future: Future = Future()
        with self._cond:
            self._plans.append(future)
            self._cond.notify()
        return future

    def stop(self) -> None:
        """Flush everything pending, then end the thread (the caller joins it under a deadline)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def pending(self) -> set[str]:
        return self.changes.pending()

    # -- the loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while True:
                work = self._wait_for_work()
                if work == "exit":
                    self._leave()
                    return
                if work == "heartbeat":
                    self._heartbeat()
                    continue
                if work == "plan":
                    self._plan()
                    continue
                self._do(work)
        finally:
            self.engine.rclone.close()  # the push path's rcd, if it runs: nothing is in flight any more

    def _wait_for_work(self) -> str:
        with self._cond:
            while True:
                now = self.clock()
                retry_ready = self._retry_at is None or now >= self._retry_at
                if self._stopping:
                    if not self.changes.has_queued():
                        self.flushed_ok = True
                        return "exit"
                    if retry_ready:
                        return "push"
                elif self._plans:
                    return "plan"
                elif self._requests:
                    return "full"
                elif retry_ready and self.changes.has_queued() and (
                        self.debouncer.is_due() or self._retry_at is not None):
                    # After a failure the put-back changes are due at the retry time: no new write is needed
                    # to trigger the retry (the debouncer was reset when the failed run took them).
                    return "push"
                elif retry_ready and self._next_reconcile is not None and now >= self._next_reconcile:
                    return "reconcile"
                elif self._retry_at is None and self._next_heartbeat is not None and now >= self._next_heartbeat:
                    return "heartbeat"  # only while the bucket answers: never delays a retry of real changes
                self._cond.wait(timeout=self._timeout(now))

    def _timeout(self, now: float) -> float:
        moments = [t for t in (self.debouncer.due_at(), self._retry_at, self._next_reconcile, self._next_heartbeat)
                   if t is not None]
        if not moments:
            return 1.0
        return min(max(min(moments) - now, 0.01), 1.0)

    def _do(self, work: str) -> None:
        requests: list[Future] = []
        if work == "full":
            with self._cond:
                requests, self._requests = self._requests, []
        with self._cond:
            self.debouncer.reset()
        batch = self.changes.take()
        try:
            result = self.engine.push(batch) if batch else None
            self.changes.done()
            if work in ("full", "reconcile") and not (result and result.reconciled):
                # A flush (`sync --once`) and the periodic look: the pending changes are pushed above, then one
                # LIST-only listing brings in what changed elsewhere. Paths changed here since (queued now) are
                # never overwritten or deleted by it.
                pending = self.changes.pending()
                self.engine.reconcile(lambda rel: covered(rel, pending))
                result = result or PushResult(reconciled=True)
            self._succeeded(batch, result, work)
            for future in requests:
                future.set_result(None)
        except RcloneError as exc:
            self.changes.put_back(getattr(exc, "paths", None))
            self._failed(exc)
            for future in requests:
                future.set_result(str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not silently stop syncing: keep changes, report
            log.exception("unexpected error while syncing with %s", self.engine.remote.display)
            self.changes.put_back()
            self._failed(exc)
            for future in requests:
                future.set_result(f"unexpected error: {exc}")

    def _succeeded(self, batch, result: PushResult | None, work: str) -> None:
        self._failures = 0
        self._retry_at = None
        self._retry_wait = self.timing.retry_interval
        fields = {"last_sync": now_iso(), "last_error": None, "last_error_at": None, "state": "ok"}
        if result is not None and result.reconciled:
            fields["last_reconcile"] = fields["last_sync"]
            self._next_reconcile = self._reconcile_after()
        if result is not None and not result.reconciled:
            log.info("synced %d change(s) to %s: %d uploaded (%s), %d deleted, %d unchanged in %.2f s",
                     len(batch.paths), self.engine.remote.display, result.uploaded, human_size(result.bytes),
                     result.deleted, result.skipped, result.seconds)
        self.board.remote(self.engine.remote.name, pending=self.changes.pending(), oldest_pending=self._oldest(),
                          **fields)

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
        self.board.remote(self.engine.remote.name, pending=pending, last_error=str(exc), last_error_at=now_iso(),
                          state="retrying" if retryable else "error", oldest_pending=self._oldest())

    def _plan(self) -> None:
        with self._cond:
            plans, self._plans = self._plans, []
        try:
            answer = (self.engine.plan(self.changes.pending()), None)
        except Exception as exc:  # noqa: BLE001 - a dry run only informs: its failure is its answer
            answer = (None, str(exc))
        for future in plans:
            future.set_result(answer)

    def _heartbeat(self) -> None:
        self._next_heartbeat = self.clock() + self.timing.heartbeat_interval
        try:
            self.presence.beat()
        except Exception as exc:  # noqa: BLE001 - the heartbeat only informs; syncing reports its own errors
            log.debug("heartbeat in %s failed: %s", self.engine.remote.display, exc)

    def _leave(self) -> None:
        if self.presence is None or self._retry_at is not None:
            return  # the bucket did not answer lately: do not hold up the exit; the heartbeat goes stale
        try:
            self.presence.leave()
        except Exception as exc:  # noqa: BLE001 - as above
            log.debug("removing the heartbeat from %s failed: %s", self.engine.remote.display, exc)

    def _reconcile_after(self) -> float | None:
        interval = self.timing.reconcile_interval
        return None if interval <= 0 else self.clock() + interval

    def _oldest(self) -> str | None:
        oldest = self.changes.oldest()
        return iso(oldest) if oldest is not None else None

    def _publish(self) -> None:
        self.board.remote(self.engine.remote.name, pending=self.changes.pending(), oldest_pending=self._oldest())
