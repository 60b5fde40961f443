"""`rclone-jupyter start`: the order of things, JupyterLab as a child, signals, the final flush, the exit code.

Order (DESIGN invariant 1): config -> restore (files up to RCLONE_JUPYTER_LARGE_FILE) -> baseline -> watch ->
JupyterLab -> the large files in the background (daemon/large_files.py). Nothing the user can see exists before the
restore of the small files is done; the large ones are not in the baseline before they are placed, so nothing
the user does meanwhile can delete them in the bucket or be overwritten by them.

Every part is made by a `Parts` factory (a test passes fakes: tests/unit/test_supervisor_order.py), every event
reaching the main thread is a typed message on one queue, and every part started is stopped at the end, in
the reverse order of its start (an ExitStack), whichever way `run` ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from rclone_jupyter import memory
from rclone_jupyter.children import spawner
from rclone_jupyter.daemon.large_files import LargeFiles
from rclone_jupyter.config.remotes import kernel_environment, render_config, write_kernel_files
from rclone_jupyter.config.settings import Settings
from rclone_jupyter.daemon import jupyter_process as jupyter
from rclone_jupyter.daemon import preflight, user_state, welcome
from rclone_jupyter.daemon.control import ControlServer, Request, Route
from rclone_jupyter.daemon.diskspace import DiskMonitor
from rclone_jupyter.daemon.status import Phase, StatusBoard, now_iso
from rclone_jupyter.daemon.syncer import RemoteSyncer
from rclone_jupyter.daemon.undo_routes import UndoRoutes
from rclone_jupyter.engine.core import Engine
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.local.upload_view import clear_stale_homes, clear_views
from rclone_jupyter.local.watcher import Watcher
from rclone_jupyter.logs import secret_mask
from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.rclone import rcd
from rclone_jupyter.rclone.retry import ONE_ATTEMPT
from rclone_jupyter.rclone.runner import check_bwlimit, find_binary, rclone_for
from rclone_jupyter.state import FileLock, StateDir, write_private

log = logging.getLogger(__name__)

JUPYTER_STOP_WAIT = 8.0  # JupyterLab needs ~1.6 s to stop; then it is killed
WATCH_GRACE = 0.3  # let inotify deliver the last writes before the watcher stops
RESTORE_STOP_WAIT = 2.0  # a restore whose rclone was killed ends within this, unless it retries
SIGNAL_CHECK = 0.5  # how often the main thread wakes to run signal handlers (_next_event)
THREAD_STOP_WAIT = 10.0  # a thread told to stop (its rclone killed) ends within this; else it is named in the log


def prepare(settings: Settings, env: dict | None = None) -> tuple[StateDir, str]:
    """Create the private state dir and write the rclone config (0600). Return it and the rclone binary."""
    env = dict(os.environ if env is None else env)
    binary = find_binary(env)
    check_bwlimit(binary, settings.bwlimit)  # before anything is written: a typo there is exit 2, at once
    state = StateDir(settings.state_dir).ensure()
    write_private(state.config_path, render_config(settings.remotes))
    write_kernel_files(settings.remotes, state.path)
    return state, binary


def make_engines(settings: Settings, state: StateDir, binary: str, env: dict | None = None, *,
                 mode: str | None = None, changes: dict[str, ChangeSet] | None = None) -> list[Engine]:
    """One engine per remote, in `mode` (the settings' push mode if None). With `changes` (a change set per
    remote name), a syncer will drive each engine: it owns retries once the start phases are done."""
    return [
        Engine(rclone_for(settings, binary, state.config_path, env), remote, settings.data_dir, state,
               mode=mode or settings.push_mode, keep=settings.keep,
               **({"pending_here": changes[remote.name].pending, "retry_after_start": ONE_ATTEMPT}
                  if changes is not None else {}))
        for remote in settings.remotes
    ]


# -- the messages on the main thread's queue ------------------------------------------------------------

@dataclass(frozen=True)
class Signalled:
    signum: int


@dataclass(frozen=True)
class Restored:
    error: BaseException | None


@dataclass(frozen=True)
class JupyterExited:
    code: int


Event = Signalled | Restored | JupyterExited
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Parts:
    """What the supervisor starts, one factory each. These are the real ones."""

    clock: Callable[[], float] = staticmethod(time.monotonic)
    sleep: Callable[[float], None] = staticmethod(time.sleep)

    def prepare(self, settings: Settings, env: dict) -> tuple[StateDir, str]:
        return prepare(settings, env)

    def preflight(self, settings: Settings, state: StateDir, binary: str, env: dict, board: StatusBoard):
        rcd.clean_stale_dirs()  # left by a daemon killed with SIGKILL
        clear_views(state.scratch())  # the upload views of such a daemon (this one holds the state's lock)
        clear_stale_homes()  # and those it made on the memory filesystem
        return preflight.at_start(settings, rclone_for(settings, binary, state.config_path, env), state.scratch(),
                                  board)

    def engines(self, settings: Settings, state: StateDir, binary: str, env: dict,
                changes: dict[str, ChangeSet]) -> list[Engine]:
        return make_engines(settings, state, binary, env, changes=changes)

    def syncer(self, engine: Engine, changes: ChangeSet, settings: Settings, board: StatusBoard) -> RemoteSyncer:
        return RemoteSyncer(engine, changes, settings.timing, board)

    def watcher(self, settings: Settings, note, overflow) -> Watcher:
        return Watcher(settings.data_dir, note, on_fallback=overflow, poll_interval=settings.timing.poll_interval,
                       watch_limit=settings.watch_limit)

    def disk_monitor(self, settings: Settings, board: StatusBoard) -> DiskMonitor:
        return DiskMonitor(settings.data_dir, board)

    def control(self, state: StateDir, routes: dict[tuple[str, str], Route]) -> ControlServer:
        return ControlServer(state.control_socket, routes)

    def large_files(self, settings: Settings, state: StateDir, binary: str, env: dict, engines: list,
                    board: StatusBoard) -> LargeFiles:
        return LargeFiles(engines, board, state, lambda: rclone_for(settings, binary, state.config_path, env))

    def jupyter(self, settings: Settings, state: StateDir, env: dict) -> jupyter.JupyterLab:
        config = jupyter.write_config(state, settings)
        # The state dir, absolute, even when it was defaulted: the JupyterLab extension (and `rclone-jupyter
        # status` in a terminal) find the daemon through it.
        extra = {**kernel_environment(settings.remotes, state.path), "RCLONE_JUPYTER_STATE_DIR": str(state.path),
                 # JupyterLab's settings, workspaces and the shell history, kept in the data folder (user_state.py)
                 **user_state.prepare(settings.data_dir, env)}
        return jupyter.JupyterLab(jupyter.command(config), cwd=settings.data_dir,
                                  env=jupyter.environment(env, extra))

    def stop_spawner(self) -> None:
        spawner.stop()  # last: any child still running is killed by the kernel (children.py)


class Supervisor:
    def __init__(self, settings: Settings, *, env: dict | None = None, image: str = "", launch_jupyter: bool = True,
                 parts: Parts | None = None):
        self.settings = settings
        self.launch_jupyter = launch_jupyter
        self.env = dict(os.environ if env is None else env)
        self.image = image or self.env.get("RCLONE_JUPYTER_IMAGE", "")
        self.parts = parts or Parts()
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.engines: list[Engine] = []
        self.syncers: list[RemoteSyncer] = []
        self.watcher: Watcher | None = None
        self.jupyter_proc: jupyter.JupyterLab | None = None
        self.board: StatusBoard | None = None
        self.large_files: LargeFiles | None = None
        self.state: StateDir | None = None
        # POST /sync waits for syncing to run (asked during the restore) or for the end.
        self._syncing = threading.Event()
        self._accepting_syncs = False
        self._waiting: list[threading.Event] = []
        self._waiting_lock = threading.Lock()
        self._ended = False

    # -- signals --------------------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        # SimpleQueue.put is safe to call from a signal handler.
        self.events.put(Signalled(signum))

    @contextlib.contextmanager
    def _signals(self):
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- main -----------------------------------------------------------------------------------------

    def run(self) -> int:
        with contextlib.ExitStack() as stack:
            stack.enter_context(self._signals())
            return self._run(stack)

    def _run(self, stack: contextlib.ExitStack) -> int:
        settings, parts = self.settings, self.parts
        secret_mask.add(*settings.secrets())
        stack.callback(parts.stop_spawner)
        state, binary = parts.prepare(settings, self.env)
        self.state = state
        daemon_lock = FileLock(state.lock_path("daemon"))
        if not daemon_lock.acquire(blocking=False):
            raise PersistenceError(
                f"another 'rclone-jupyter start' is already running with the state directory {state.path}."
            )
        stack.callback(daemon_lock.release)
        self.board = StatusBoard(state.status_path, {r.name: r.display for r in settings.remotes},
                                 persistent=settings.persistent,
                                 loss_window=settings.timing.quiet_period if settings.persistent else None)
        self.board.set(data_dir=str(settings.data_dir))  # `rclone-jupyter wait PATH` resolves paths against it
        control = parts.control(state, {("GET", "/status"): self._status_route, ("POST", "/sync"): self._sync_route,
                                        ("POST", "/plan"): self._plan_route, **UndoRoutes(settings).routes()})
        control.start()
        stack.callback(control.stop)
        stack.callback(self._stop_taking_syncs)
        # The pid last: whoever sees it (`sync --once`) finds the control channel answering.
        daemon_lock.write_pid()
        if not settings.persistent:
            log.warning(
                "WARNING: no bucket is configured (AWS_S3_BUCKET_FOLDER, AZURE_CONTAINER_URL or "
                "GOOGLE_BUCKET_FOLDER): running WITHOUT persistence. Everything in %s is lost when this "
                "container stops.", settings.data_dir)
        if settings.password_is_default:
            log.warning("WARNING: JUPYTERLAB_PW is not set; the password is the default 'data', which is public "
                        "knowledge. Set JUPYTERLAB_PW to protect this JupyterLab.")

        # Before anything touches the data folder or the bucket: stop at once on what would fail half-way.
        checked = parts.preflight(settings, state, binary, self.env, self.board)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        # The change set each syncer will fill, given to its engine now (it asks what is pending here).
        changes = {remote.name: ChangeSet() for remote in settings.remotes}
        self.engines = parts.engines(settings, state, binary, self.env, changes)
        for engine in self.engines:  # the pre-flight has just listed each bucket folder: no second listing
            if engine.remote.name in checked.entries:
                engine.use_listing(checked.entries.pop(engine.remote.name))
        # The listings (about 200 bytes an object) must not live on in this frame, which lasts as long as the
        # daemon: the engines keep what they need of them.
        del checked
        self.board.set_phase(Phase.RESTORING)
        code = self._restore_phase()
        if code is not None:
            return code

        self.syncers = [parts.syncer(engine, changes[engine.remote.name], settings, self.board)
                        for engine in self.engines]
        for syncer in self.syncers:
            syncer.start()
            stack.callback(self._stop_thread, syncer)
        if self.syncers:
            self.watcher = parts.watcher(settings, self._note, self._overflow)
            self.watcher.start()
            stack.callback(self.watcher.stop)
        self._accepting_syncs = True
        self._syncing.set()
        disk = parts.disk_monitor(settings, self.board)  # a full disk: status says why saves fail
        disk.start()
        stack.callback(self._stop_thread, disk)
        later = [engine.to_come.waiting() for engine in self.engines]
        welcome.write(settings, self.image, to_come=(sum(len(w) for w in later),
                                                     sum(v.size for w in later for v in w.values())))
        if self.launch_jupyter:
            self._start_jupyter(stack)
            log.info("JupyterLab is starting on port %d (all IPv4 and IPv6 addresses)", settings.port)
        # The files over RCLONE_JUPYTER_LARGE_FILE, in the background; stopped first at a stop (_shutdown), and
        # here in any case.
        self.large_files = parts.large_files(settings, state, binary, self.env, self.engines, self.board)
        self.large_files.start()
        stack.callback(self.large_files.stop)
        memory.give_back()  # the start's peak (the listing, the restore's plan) is free now
        self.board.set_phase(Phase.RUNNING)
        return self._main_loop()

    def _note(self, rel: str, finished: bool = False) -> None:
        for syncer in self.syncers:
            syncer.note(rel, finished)

    def _overflow(self) -> None:
        for syncer in self.syncers:
            syncer.note_overflow()

    def _stop_thread(self, thread) -> None:
        """Stop one of our threads (a syncer's flush is over or abandoned by now) and wait for it to end."""
        thread.stop()
        thread.join(timeout=THREAD_STOP_WAIT)
        if thread.is_alive():
            log.warning("the thread %s did not stop within %g s", thread.name, THREAD_STOP_WAIT)

    # -- the control channel's routes (daemon/control.py) ---------------------------------------------

    def _status_route(self, _request: Request) -> tuple[int, dict]:
        return 200, {**self.board.snapshot(), "running": True}

    def _sync_route(self, _request: Request) -> tuple[int, dict]:
        """Push everything pending on every cloud, then reconcile; answer when that is done.

        Asked during the restore, it waits for syncing to run. Each syncer starts a new full run for requests
        that arrived after its current one began, so every caller gets a flush that started after it asked.
        """
        self._syncing.wait()
        if not self._accepting_syncs:
            return 200, {"ok": False, "error": "rclone-jupyter stopped before it could sync"}
        requested = now_iso()
        futures = [s.request_full_sync() for s in self.syncers]
        self.board.set(manual_sync={"requested": requested, "finished": None, "ok": None, "error": None})
        if not self._wait_for(futures):
            return 200, {"ok": False, "error": "rclone-jupyter stopped before it answered"}
        errors = [e for e in (f.result() for f in futures) if e]
        error = "; ".join(errors) or None
        self.board.set(manual_sync={"requested": requested, "finished": now_iso(), "ok": not errors, "error": error})
        return 200, {"ok": not errors, "error": error}

    def _plan_route(self, _request: Request) -> tuple[int, dict]:
        """`sync --once --dry-run`: what a full sync would do now on each cloud, changing nothing."""
        self._syncing.wait()
        if not self._accepting_syncs:
            return 200, {"ok": False, "error": "rclone-jupyter stopped before it could plan", "plan": None}
        futures = {s.engine.remote.display: s.request_plan() for s in self.syncers}
        if not self._wait_for(list(futures.values())):
            return 200, {"ok": False, "error": "rclone-jupyter stopped before it answered", "plan": None}
        answers = {display: f.result() for display, f in futures.items()}
        errors = [f"{display}: {error}" for display, (_, error) in answers.items() if error]
        plan = {display: lines for display, (lines, _) in answers.items() if lines is not None}
        return 200, {"ok": not errors, "error": "; ".join(errors) or None, "plan": plan}

    def _wait_for(self, futures: list[Future]) -> bool:
        """Wait until every future is done, or the run ends (a syncer that never ended). True if all are done."""
        done = threading.Event()
        for future in futures:
            future.add_done_callback(lambda _f: all(f.done() for f in futures) and done.set())
        if not futures:
            done.set()
        with self._waiting_lock:
            if self._ended:
                done.set()
            self._waiting.append(done)
        done.wait()
        with self._waiting_lock:
            self._waiting.remove(done)
        return all(f.done() for f in futures)

    def _stop_taking_syncs(self) -> None:
        """At the end: every request still waiting (for a restore that did not finish, for a syncer that did not
        end) is answered now, so the control channel can stop."""
        self._syncing.set()
        with self._waiting_lock:
            self._ended = True
            for done in self._waiting:
                done.set()

    # -- the restore ----------------------------------------------------------------------------------

    def _restore_phase(self) -> int | None:
        """Restore and baseline in a thread, so a signal can still stop us. Return an exit code to stop."""
        thread = threading.Thread(target=self._restore, name="restore", daemon=True)
        thread.start()
        while True:
            event = self._next_event()
            if isinstance(event, Signalled) and event.signum in STOP_SIGNALS:
                log.warning("signal %s during the restore: stopping (nothing was changed yet)", event.signum)
                for engine in self.engines:
                    engine.rclone.kill()
                # Its rclone killed, the restore fails at once (or retries: the spawner's stop kills that
                # rclone too). Nothing is lost by not waiting longer: nothing was changed yet.
                thread.join(timeout=RESTORE_STOP_WAIT)
                self.board.set_phase(Phase.STOPPED)
                return 128 + event.signum
            if isinstance(event, Restored):
                break
        thread.join()  # it has just said it is done
        exc = event.error
        if exc is None:
            return None
        self._set_restore_state("failed")
        self.board.set_phase(Phase.FAILED)
        if isinstance(exc, PersistenceError):
            raise exc
        if isinstance(exc, RcloneError):
            raise PersistenceError(
                f"restoring the data folder failed after retries: {exc}. Persistence was asked for and does not "
                "work, so JupyterLab is not started (your work would be lost at the next stop)."
            ) from exc
        raise exc

    def _restore(self) -> None:
        engine = None
        try:
            # Several clouds: restored in PROVIDERS order; each after the first is merged in (README).
            for index, engine in enumerate(self.engines):
                # One cloud: the large files come after JupyterLab has started (daemon/large_files.py). Several
                # are merged file by file, and bisync wants the whole folder: all before.
                one_by_one = len(self.engines) == 1 and self.settings.push_mode != "bisync"
                engine.restore(merge=index > 0, on_progress=self._restore_progress(engine.remote.name),
                               large_from=self.settings.large_file if one_by_one else None)
            self._copy_examples()
            for index, engine in enumerate(self.engines):
                engine.establish(merged=index > 0, several=len(self.engines) > 1)
                self.board.remote(engine.remote.name, last_sync=now_iso(), last_reconcile=now_iso(), state="ok",
                                  not_saved=engine.not_saved_shown(), **engine.skipped_shown())
            if not any(engine.to_come for engine in self.engines):
                self._set_restore_state("done")
        except RcloneError as exc:
            # Name the cloud: with several configured, "the restore failed" alone does not say which.
            exc.args = (f"{engine.remote.display}: {exc}",) if engine is not None else exc.args
            self.events.put(Restored(exc))
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.events.put(Restored(exc))
        else:
            self.events.put(Restored(None))

    def _restore_progress(self, name: str):
        def report(done: int, total: int, files_done: int, files_total: int) -> None:
            self.board.set(restore={"state": "running", "remote": name, "bytes_done": done, "bytes_total": total,
                                    "files_done": files_done, "files_total": files_total})
        return report

    def _set_restore_state(self, state: str) -> None:
        self.board.set(restore={**(self.board.snapshot().get("restore") or {}), "state": state})

    def _copy_examples(self) -> None:
        """Example notebooks are copied in only when every bucket folder was empty (a fresh user)."""
        examples = self.settings.examples_dir
        if examples is None or not all(e.remote_was_empty for e in self.engines):
            return
        for item in examples.iterdir():
            target = self.settings.data_dir / item.name
            if target.exists():
                continue
            if item.is_dir():
                shutil.copytree(item, target)
            else:
                shutil.copy2(item, target)
        log.info("copied the example notebooks from %s into %s", examples, self.settings.data_dir)

    # -- JupyterLab -----------------------------------------------------------------------------------

    def _start_jupyter(self, stack: contextlib.ExitStack) -> None:
        proc = self.jupyter_proc = self.parts.jupyter(self.settings, self.state, self.env)
        self.board.set(jupyter={"pid": proc.pid, "port": self.settings.port})
        waiter = threading.Thread(target=lambda: self.events.put(JupyterExited(proc.wait())),
                                  name="jupyter-wait", daemon=True)
        waiter.start()

        def stop() -> None:  # whatever happened before: JupyterLab is gone, then its waiter ends
            if proc.poll() is None:
                proc.kill()
            waiter.join(timeout=THREAD_STOP_WAIT)
        stack.callback(stop)

    def _next_event(self) -> Event:
        # The kernel may deliver a signal to any of our threads; Python runs its handler (which queues the
        # event) only when the main thread wakes. A wait with no timeout might never wake: seen as a stop that
        # never started, once in a few hundred starts.
        while True:
            try:
                return self.events.get(timeout=SIGNAL_CHECK)
            except queue.Empty:
                continue

    def _main_loop(self) -> int:
        while True:
            event = self._next_event()
            if isinstance(event, Signalled):
                log.info("received signal %d: stopping JupyterLab, then saving every pending change", event.signum)
                return self._shutdown(signum=event.signum)
            if isinstance(event, JupyterExited):
                log.warning("JupyterLab exited on its own with code %s; saving every pending change", event.code)
                return self._shutdown(jupyter_code=event.code)

    # -- shutdown -------------------------------------------------------------------------------------

    def _shutdown(self, *, signum: int | None = None, jupyter_code: int | None = None) -> int:
        self.board.set_phase(Phase.STOPPING)
        if self.large_files is not None:  # what did not arrive stays in the bucket, for the next start
            self.large_files.stop()
        clock = self.parts.clock
        deadline = clock() + self.settings.timing.flush_deadline
        if self._stop_jupyter(deadline):
            return self._skipped(signum)
        self.parts.sleep(WATCH_GRACE)
        if self.watcher is not None:
            self.watcher.stop()
        for syncer in self.syncers:
            syncer.stop()
        while any(s.is_alive() for s in self.syncers):
            if clock() >= deadline:
                break
            if self._second_signal(timeout=0.1):
                return self._skipped(signum)
        ok = all(s.flushed_ok for s in self.syncers)
        if not ok:
            self._abandon_flush()
            self._report_unsaved("the flush deadline (RCLONE_JUPYTER_FLUSH_DEADLINE="
                                 f"{self.settings.timing.flush_deadline:g} s) passed")
        else:
            # Files never saved (a name that cannot be an object, an object of that name the storage refuses
            # this container): they are lost with this container, so the exit says so as any unsaved change does.
            unsaveable = [engine for engine in self.engines if engine.not_saved]
            for engine in unsaveable:
                log.error("%d file(s) in %s were never saved to %s: %s", len(engine.not_saved),
                          self.settings.data_dir, engine.remote.display,
                          "; ".join(f"{path} ({why})" for path, why in engine.not_saved_shown(20).items()))
            if unsaveable:
                ok = False
            else:
                log.info("every change is saved%s", "" if self.syncers else " (no bucket configured)")
        self.board.set_phase(Phase.STOPPED)
        if jupyter_code is not None:
            return jupyter_code if ok or jupyter_code else 1
        return 0 if ok else 1

    def _stop_jupyter(self, deadline: float) -> bool:
        """Stop JupyterLab so nothing new is written. Return True if a second signal asked to skip the flush."""
        proc = self.jupyter_proc
        if proc is None or proc.poll() is not None:
            return False
        proc.terminate()
        stop_by = min(deadline, self.parts.clock() + JUPYTER_STOP_WAIT)
        while proc.poll() is None and self.parts.clock() < stop_by:
            if self._second_signal(timeout=0.05):
                proc.kill()
                return True
        if proc.poll() is None:
            log.warning("JupyterLab did not stop in time; killing it")
            proc.kill()
            proc.wait()
        return False

    def _second_signal(self, timeout: float) -> bool:
        try:
            event = self.events.get(timeout=timeout)
        except queue.Empty:
            return False
        return isinstance(event, Signalled) and event.signum in STOP_SIGNALS

    def _abandon_flush(self) -> None:
        """Give up the flush: the syncers end without pushing more, their rclone is killed."""
        for syncer in self.syncers:
            syncer.abandon()
        for engine in self.engines:
            engine.rclone.kill()

    def _skipped(self, signum: int | None) -> int:
        self._abandon_flush()
        self._report_unsaved("a second signal asked to skip the flush")
        self.board.set_phase(Phase.STOPPED)
        return 128 + (signum or signal.SIGTERM)

    def _report_unsaved(self, why: str) -> None:
        for syncer in self.syncers:
            pending = sorted(syncer.pending())
            if pending:
                log.error("ERROR: %s; %d change(s) NOT saved to %s: %s", why, len(pending),
                          syncer.engine.remote.display, ", ".join(pending[:20]) + (" ..." if len(pending) > 20 else ""))
