"""`rclone-jupyter start`: the order of things, JupyterLab as a child, signals, the final flush, the exit code.

Order (DESIGN invariant 1): config -> restore (files up to LARGE_FILE) -> baseline -> watch -> JupyterLab ->
the large files in the background (engine/background.py). Nothing the user can see exists before the
restore of the small files is done; the large ones are never in `known` before they are placed, so nothing
the user does meanwhile can delete them in the bucket or be overwritten by them.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import signal
import subprocess
import threading
import time

from rclone_jupyter.daemon import control
from rclone_jupyter.daemon import jupyter_process as jupyter
from rclone_jupyter.daemon import preflight
from rclone_jupyter.rclone import rcd
from rclone_jupyter.daemon import welcome
from rclone_jupyter.daemon import user_state
from rclone_jupyter.daemon.diskspace import DiskMonitor
from rclone_jupyter.daemon.large_files import LargeFiles
from rclone_jupyter.engine.background import LARGE_FILE
from rclone_jupyter.engine.core import Engine
from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.rclone.retry import ONE_ATTEMPT
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.logs import secret_mask
from rclone_jupyter.rclone.rcd import die_with_parent
from rclone_jupyter.rclone.runner import Rclone, find_binary
from rclone_jupyter.config.remotes import kernel_environment, render_config, write_kernel_files
from rclone_jupyter.config.settings import Settings
from rclone_jupyter.state import FileLock, StateDir, write_private
from rclone_jupyter.daemon.status import StatusBoard, now_iso
from rclone_jupyter.daemon.syncer import RemoteSyncer
from rclone_jupyter.local.watcher import Watcher

log = logging.getLogger(__name__)

JUPYTER_STOP_WAIT = 8.0  # JupyterLab needs ~1.6 s to stop; then it is killed
WATCH_GRACE = 0.3  # let inotify deliver the last writes before the watcher stops


def prepare(settings: Settings, env: dict | None = None) -> tuple[StateDir, str]:
    """Create the private state dir and write the rclone config (0600). Return it and the rclone binary."""
    env = dict(os.environ if env is None else env)
    binary = find_binary(env)
    state = StateDir(settings.state_dir).ensure()
    write_private(state.config_path, render_config(settings.remotes))
    write_kernel_files(settings.remotes, state.path)
    return state, binary


def make_engines(settings: Settings, state: StateDir, binary: str, env: dict | None = None, *,
                 mode: str | None = None, changes: dict[str, ChangeSet] | None = None) -> list[Engine]:
    """One engine per remote, in `mode` (the settings' push mode if None). With `changes` (a change set per
    remote name), a syncer will drive each engine: it owns retries once the start phases are done."""
    return [
        Engine(Rclone(binary, state.config_path, env=env), remote, settings.data_dir, state,
               mode=mode or settings.push_mode,
               **({"pending_here": changes[remote.name].pending, "retry_after_start": ONE_ATTEMPT}
                  if changes is not None else {}))
        for remote in settings.remotes
    ]


class Supervisor:
    def __init__(self, settings: Settings, *, env: dict | None = None, image: str = "", launch_jupyter: bool = True):
        self.settings = settings
        self.launch_jupyter = launch_jupyter
        self.env = dict(os.environ if env is None else env)
        self.image = image or self.env.get("RCLONE_JUPYTER_IMAGE", "")
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.engines: list[Engine] = []
        self.syncers: list[RemoteSyncer] = []
        self.watcher: Watcher | None = None
        self.jupyter_proc: subprocess.Popen | None = None
        self.board: StatusBoard | None = None
        self._usr1_during_restore = False
        self.large_files: LargeFiles | None = None
        self.state: StateDir | None = None

    # -- signals --------------------------------------------------------------------------------------

    def _on_signal(self, signum, _frame) -> None:
        # SimpleQueue.put is safe to call from a signal handler.
        self.events.put(("signal", signum))

    def _install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
            signal.signal(sig, self._on_signal)

    # -- main -----------------------------------------------------------------------------------------

    def run(self) -> int:
        settings = self.settings
        self._install_signals()
        secret_mask.add(*settings.secrets())
        state, binary = prepare(settings, self.env)
        self.state = state
        daemon_lock = FileLock(state.lock_path("daemon"))
        if not daemon_lock.acquire(blocking=False):
            raise PersistenceError(
                f"another 'rclone-jupyter start' is already running with the state directory {state.path}."
            )
        daemon_lock.write_pid()
        self.board = StatusBoard(state.status_path, {r.name: r.display for r in settings.remotes},
                                 persistent=settings.persistent,
                                 loss_window=settings.timing.quiet_period if settings.persistent else None)
        self.board.set(data_dir=str(settings.data_dir))  # `rclone-jupyter wait PATH` resolves paths against it
        if not settings.persistent:
            log.warning(
                "WARNING: no bucket is configured (AWS_S3_BUCKET_FOLDER, AZURE_CONTAINER_URL or "
                "GOOGLE_BUCKET_FOLDER): running WITHOUT persistence. Everything in %s is lost when this "
                "container stops.", settings.data_dir)
        if settings.password_is_default:
            log.warning("WARNING: JUPYTERLAB_PW is not set; the password is the default 'data', which is public "
                        "knowledge. Set JUPYTERLAB_PW to protect this JupyterLab.")

        rcd.clean_stale_dirs()  # left by a daemon killed with SIGKILL
        # Before anything touches the data folder or the bucket: stop at once on what would fail half-way.
        checked = preflight.at_start(settings, Rclone(binary, state.config_path, env=self.env), state.scratch(),
                                     self.board)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        changes = {remote.name: ChangeSet() for remote in settings.remotes}
        self.engines = make_engines(settings, state, binary, self.env, changes=changes)
        for engine in self.engines:  # the pre-flight has just listed each bucket folder: no second listing
            if engine.remote.name in checked.entries:
                engine.use_listing(checked.entries[engine.remote.name])
        self.board.set(phase="restoring")
        code = self._restore_phase()
        if code is not None:
            return code

        self.syncers = [RemoteSyncer(engine, changes[engine.remote.name], settings.timing, self.board)
                        for engine in self.engines]
        for syncer in self.syncers:
            syncer.start()
        if self.syncers:
            self.watcher = Watcher(settings.data_dir, self._note, on_fallback=self._overflow,
                                   poll_interval=settings.timing.poll_interval, watch_limit=settings.watch_limit)
            self.watcher.start()
        DiskMonitor(settings.data_dir, self.board).start()  # a full disk: status says why saves fail
        later = [engine.to_come.waiting() for engine in self.engines]
        welcome.write(settings, self.image, to_come=(sum(len(w) for w in later),
                                                     sum(v[0] for w in later for v in w.values())))
        if self.launch_jupyter:
            self._start_jupyter(state)
            log.info("JupyterLab is starting on port %d (all IPv4 and IPv6 addresses)", settings.port)
        self.large_files = LargeFiles(self.engines, self.board, state, binary, self.env)
        self.large_files.start()  # the files over LARGE_FILE, in the background (daemon/large_files.py)
        self.board.set(phase="running")
        return self._main_loop()

    def _note(self, rel: str, finished: bool = False) -> None:
        for syncer in self.syncers:
            syncer.note(rel, finished)

    def _overflow(self) -> None:
        for syncer in self.syncers:
            syncer.note_overflow()

    def _restore_phase(self) -> int | None:
        """Restore and baseline in a thread, so a signal can still stop us. Return an exit code to stop."""
        outcome: list[BaseException | None] = []

        def work() -> None:
            engine = None
            try:
                # Several clouds: restored in PROVIDERS order; each after the first is merged in (README).
                for index, engine in enumerate(self.engines):
                    # One cloud: the large files come after JupyterLab has started (engine/background.py).
                    # Several are merged file by file, and bisync wants the whole folder: all before.
                    one_by_one = len(self.engines) == 1 and self.settings.push_mode != "bisync"
                    engine.restore(merge=index > 0, on_progress=self._restore_progress(engine.remote.name),
                                   large_from=LARGE_FILE if one_by_one else None)
                self._copy_examples()
                for index, engine in enumerate(self.engines):
                    engine.establish(merged=index > 0, several=len(self.engines) > 1)
                    self.board.remote(engine.remote.name, last_sync=now_iso(), last_reconcile=now_iso(), state="ok",
                                      skipped=dict(sorted(engine.skipped.items())[:50]))
                if not any(engine.to_come for engine in self.engines):
                    self._set_restore_state("done")
                outcome.append(None)
            except RcloneError as exc:
                # Name the cloud: with several configured, "the restore failed" alone does not say which.
                exc.args = (f"{engine.remote.display}: {exc}",) if engine is not None else exc.args
                outcome.append(exc)
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                outcome.append(exc)
            self.events.put(("restored", None))

        threading.Thread(target=work, name="restore", daemon=True).start()
        while True:
            kind, value = self.events.get()
            if kind == "signal" and value in (signal.SIGTERM, signal.SIGINT):
                log.warning("signal %s during the restore: stopping (nothing was changed yet)", value)
                for engine in self.engines:
                    engine.rclone.kill()
                self.board.set(phase="stopped")
                return 128 + value
            if kind == "signal" and value == signal.SIGUSR1:
                self._usr1_during_restore = True  # answered once syncing runs
            if kind == "restored":
                break
        exc = outcome[0]
        if exc is None:
            return None
        self._set_restore_state("failed")
        self.board.set(phase="failed")
        if isinstance(exc, PersistenceError):
            raise exc
        if isinstance(exc, RcloneError):
            raise PersistenceError(
                f"restoring the data folder failed after retries: {exc}. Persistence was asked for and does not "
                "work, so JupyterLab is not started (your work would be lost at the next stop)."
            ) from exc
        raise exc

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

    def _start_jupyter(self, state: StateDir) -> None:
        config = jupyter.write_config(state, self.settings)
        # The state dir, absolute, even when it was defaulted: the JupyterLab extension (and `rclone-jupyter
        # status` in a terminal) find the status file through it.
        extra = {**kernel_environment(self.settings.remotes, state.path), "RCLONE_JUPYTER_STATE_DIR": str(state.path),
                 # JupyterLab's settings, workspaces and the shell history, kept in the data folder (user_state.py)
                 **user_state.prepare(self.settings.data_dir, self.env)}
        self.jupyter_proc = subprocess.Popen(
            jupyter.command(config),
            cwd=self.settings.data_dir,
            env=jupyter.environment(self.env, extra),
            stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C in the terminal reaches us only; we stop JupyterLab in order.
            start_new_session=True,
            # And it dies with us: a daemon killed with SIGKILL (outside a container) leaves no JupyterLab
            # holding the port.
            preexec_fn=die_with_parent,
        )
        self.board.set(jupyter={"pid": self.jupyter_proc.pid, "port": self.settings.port})
        proc = self.jupyter_proc
        threading.Thread(target=lambda: self.events.put(("jupyter-exit", proc.wait())),
                         name="jupyter-wait", daemon=True).start()

    def _main_loop(self) -> int:
        if self._usr1_during_restore:
            self._manual_sync()
        while True:
            kind, value = self.events.get()
            if kind == "signal" and value == signal.SIGUSR1:
                self._manual_sync()
            elif kind == "signal":
                log.info("received signal %d: stopping JupyterLab, then saving every pending change", value)
                return self._shutdown(signum=value)
            elif kind == "jupyter-exit":
                log.warning("JupyterLab exited on its own with code %s; saving every pending change", value)
                return self._shutdown(jupyter_code=value)

    def _manual_sync(self) -> None:
        """Answer every waiting `sync --once` / "Save now" request with one flush of every cloud."""
        taken = control.take_requests(self.state)
        dry = [request_id for request_id, dry_run in taken if dry_run]
        ids = [request_id for request_id, dry_run in taken if not dry_run]
        if dry:
            self._answer_plans(dry)
        if not ids:
            return
        requested = now_iso()
        futures = [s.request_full_sync() for s in self.syncers]
        self.board.set(manual_sync={"requested": requested, "finished": None, "ok": None, "error": None})

        def wait() -> None:
            errors = [e for e in (f.result() for f in futures) if e]
            error = "; ".join(errors) or None
            self.board.set(manual_sync={"requested": requested, "finished": now_iso(), "ok": not errors,
                                        "error": error})
            for request_id in ids:
                control.answer(self.state, request_id, not errors, error)

        threading.Thread(target=wait, name="manual-sync", daemon=True).start()

    def _answer_plans(self, ids: list[str]) -> None:
        """`sync --once --dry-run`: each syncer's plan, changing nothing."""
        futures = {s.engine.remote.display: s.request_plan() for s in self.syncers}

        def wait() -> None:
            answers = {display: f.result() for display, f in futures.items()}
            errors = [f"{display}: {error}" for display, (_, error) in answers.items() if error]
            plan = {display: lines for display, (lines, _) in answers.items() if lines is not None}
            for request_id in ids:
                control.answer(self.state, request_id, not errors, "; ".join(errors) or None, plan=plan)

        threading.Thread(target=wait, name="dry-run", daemon=True).start()

    # -- shutdown -------------------------------------------------------------------------------------

    def _shutdown(self, *, signum: int | None = None, jupyter_code: int | None = None) -> int:
        self.board.set(phase="stopping")
        if self.large_files is not None:  # what did not arrive stays in the bucket, for the next start
            self.large_files.stop()
        deadline = time.monotonic() + self.settings.timing.flush_deadline
        if self._stop_jupyter(deadline):
            return self._skipped(signum)
        time.sleep(WATCH_GRACE)
        if self.watcher is not None:
            self.watcher.stop()
        for syncer in self.syncers:
            syncer.stop()
        while any(s.is_alive() for s in self.syncers):
            if time.monotonic() >= deadline:
                break
            if self._second_signal(timeout=0.1):
                return self._skipped(signum)
        ok = all(s.flushed_ok for s in self.syncers)
        if not ok:
            for engine in self.engines:
                engine.rclone.kill()
            self._report_unsaved("the flush deadline (RCLONE_JUPYTER_FLUSH_DEADLINE="
                                 f"{self.settings.timing.flush_deadline:g} s) passed")
        else:
            log.info("every change is saved%s", "" if self.syncers else " (no bucket configured)")
        self.board.set(phase="stopped")
        if jupyter_code is not None:
            return jupyter_code if ok or jupyter_code else 1
        return 0 if ok else 1

    def _stop_jupyter(self, deadline: float) -> bool:
        """Stop JupyterLab so nothing new is written. Return True if a second signal asked to skip the flush."""
        proc = self.jupyter_proc
        if proc is None or proc.poll() is not None:
            return False
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        stop_by = min(deadline, time.monotonic() + JUPYTER_STOP_WAIT)
        while proc.poll() is None and time.monotonic() < stop_by:
            if self._second_signal(timeout=0.05):
                proc.kill()
                return True
        if proc.poll() is None:
            log.warning("JupyterLab did not stop in time; killing it")
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return False

    def _second_signal(self, timeout: float) -> bool:
        try:
            kind, value = self.events.get(timeout=timeout)
        except queue.Empty:
            return False
        return kind == "signal" and value in (signal.SIGTERM, signal.SIGINT)

    def _skipped(self, signum: int | None) -> int:
        for engine in self.engines:
            engine.rclone.kill()
        self._report_unsaved("a second signal asked to skip the flush")
        self.board.set(phase="stopped")
        return 128 + (signum or signal.SIGTERM)

    def _report_unsaved(self, why: str) -> None:
        for syncer in self.syncers:
            pending = sorted(syncer.pending())
            if pending:
                log.error("ERROR: %s; %d change(s) NOT saved to %s: %s", why, len(pending),
                          syncer.engine.remote.display, ", ".join(pending[:20]) + (" ..." if len(pending) > 20 else ""))

