"""A long-running `rclone rcd` for the push path: one local HTTP call per step instead of one rclone start.

Starting rclone costs tens of milliseconds, as much as the upload of a small file; a push made of two runs (the
check, the upload) was twice the floor of one `rclone copyto`. The rcd is started on first use, listens on a
unix socket in a private 0700 directory (a unix socket bypasses rc authentication: the directory's permissions
are the authentication), dies with the daemon (children.py), and is stopped after `idle_seconds` without a
call, so an idle container runs no rclone at all. Failure handling stays per call: an error answer raises
RcloneError classified like a failed run; a dead or killed rcd fails the call as retryable and the next call
starts a fresh one.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable

from rclone_jupyter import pid_dirs
from rclone_jupyter.children import spawner
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.logs import rclone_line, secret_mask
from rclone_jupyter.unixhttp import UnixHTTPConnection

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
# A burst of saves shares one rcd; a container left alone runs no rclone (its ~70 MB RSS) for long.
IDLE_SECONDS = 10.0


DIR_PREFIX = "rj-rcd-"
OLD_DIR_AGE = 60.0  # a folder without a pid in its name (older versions) is stale once this old and silent


def _answers(sock_path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1)
            probe.connect(sock_path)
        return True
    except OSError:
        return False


def clean_stale_dirs(tmp: str | None = None) -> int:
    """Remove the rcd folders (`rj-rcd-<pid>-*`, ours only) whose daemon is gone (SIGKILL leaves them).

    Return how many were removed. Folders of living processes, and of other users, are left alone.
    """
    # Made by an older version (no pid in the name): stale when nothing answers on its socket and not brand new.
    return pid_dirs.clean_stale(DIR_PREFIX, tmp, unnamed_stale=lambda path, st: (
        time.time() - st.st_mtime > OLD_DIR_AGE and not _answers(os.path.join(path, "rc.sock"))))


# rclone's errors for a file that changed while it was read: the syncer sends it again once it is quiet.
CHANGED_WHILE_READ = ("source file is being updated", "corrupted on transfer")
# rclone's errors for a background job we stopped ourselves (a newer version replaces it), and for a job asked
# about in a new rcd after the old one died (the large lane then sends the file again).
CANCELLED = ("context canceled", "job not found")


def changed_while_read(text: str) -> bool:
    return any(marker in text for marker in CHANGED_WHILE_READ)


def error_level(text: str) -> int:
    """The level of one of rclone's error lines in our log: a file still being written, or an upload we
    stopped, is not something a user must look at."""
    if any(marker in text for marker in CANCELLED):
        return logging.DEBUG
    if changed_while_read(text):
        return logging.INFO
    return logging.WARNING


class RcDaemon:
    """One `rclone rcd` child. Thread-safe; calls may come from several threads."""

    def __init__(self, argv: Callable[[str], tuple[str, ...]], env: Callable[[], dict[str, str]],
                 classify: Callable[[int | None, str], tuple[bool, str]], *, idle_seconds: float = IDLE_SECONDS):
        self._argv = argv  # socket path -> the full argv
        self._env = env
        self._classify = classify
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._dir: str | None = None
        self._tail: deque[str] = deque(maxlen=20)
        self._in_flight = 0
        self._last_used = 0.0
        self._groups = itertools.count(1)

    # -- lifecycle ------------------------------------------------------------------------------------

    def _socket(self) -> str:
        assert self._dir is not None
        return os.path.join(self._dir, "rc.sock")

    def _ensure_started(self) -> str:
        """Return the socket of a running rcd, starting one if needed. Called with the lock held."""
        if self._proc is not None and self._proc.poll() is None:
            return self._socket()
        self._cleanup()
        # A short private path: unix socket paths are limited to about 100 bytes. Our pid in the name lets
        # a later start remove it if we are killed (clean_stale_dirs).
        self._dir = pid_dirs.make(DIR_PREFIX)
        sock = self._socket()
        self._tail.clear()
        proc = spawner.popen(
            self._argv(sock),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self._env(),
            text=True,
            errors="replace",
            start_new_session=True,  # a Ctrl-C in the terminal must not kill a flush half-way
        )
        self._proc = proc
        threading.Thread(target=self._pump_log, args=(proc,), name="rclone-rcd-log", daemon=True).start()
        threading.Thread(target=self._stop_when_idle, args=(proc,), name="rclone-rcd-idle", daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                    probe.connect(sock)
                log.debug("rclone rcd started (pid %d)", proc.pid)
                return sock
            except OSError:
                time.sleep(0.01)
        self._terminate(proc)
        tail = "\n".join(self._tail)
        raise RcloneError(f"rclone rcd did not start: {tail[-400:] or 'no output'}", exit_code=proc.poll(),
                          retryable=False, output_tail=tail)

    def _pump_log(self, proc: subprocess.Popen) -> None:
        """rcd's log into ours, masked: errors as warnings, the rest (a line per file) at debug."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            decoded = rclone_line(raw)
            if decoded is None:
                continue
            text, record = decoded
            self._tail.append(text)
            if record is not None and record.get("level") in ("error", "critical"):
                log.log(error_level(text), "rclone: %s", text)
            else:
                log.debug("rclone rcd: %s", text)

    def _stop_when_idle(self, proc: subprocess.Popen) -> None:
        while proc.poll() is None:
            time.sleep(min(5.0, max(self.idle_seconds / 4, 0.05)))
            with self._lock:
                if proc is not self._proc:
                    return
                if self._in_flight == 0 and time.monotonic() - self._last_used >= self.idle_seconds:
                    log.debug("rclone rcd idle for %.0f s; stopping it", self.idle_seconds)
                    self._proc = None  # no longer the current one before it exits: whoever sees it gone agrees
                    self._terminate(proc)
                    self._cleanup()
                    return

    def _terminate(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _cleanup(self) -> None:
        self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def stop(self) -> None:
        """Stop the rcd (it finishes nothing: call when no push is in flight)."""
        with self._lock:
            if self._proc is not None:
                self._terminate(self._proc)
            self._cleanup()

    def alive(self) -> bool:
        """The rcd runs (its background jobs with it)."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def kill(self) -> None:
        """Kill the rcd now, failing the call in flight (the shutdown deadline passed)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    # -- background jobs ------------------------------------------------------------------------------

    def hold(self) -> None:
        """A background job (`_async`) runs in the rcd: it must not be stopped for idleness meanwhile."""
        with self._lock:
            self._in_flight += 1

    def release(self) -> None:
        """The background job of a `hold` ended (done, failed, stopped, or lost with a dead rcd)."""
        with self._lock:
            self._in_flight -= 1
            self._last_used = time.monotonic()

    # -- calls ----------------------------------------------------------------------------------------

    def call(self, method: str, params: dict, *, what: str) -> dict:
        """POST one rc method; return its JSON answer. Raise RcloneError on any failure.

        Some calls answer 200 although a file failed: with a list of files (`--files-from`), rclone logs a
        file it could not look up ("--files-from failed to read file": a HEAD refused, the bucket down) and
        leaves it out, as if it did not exist. So each call counts its errors in a stats group of its own,
        and any error fails the call: a missing answer must never read as "no such object".
        """
        if params.get("_async"):
            return self._post(method, params, what=what)  # a job: its own status says how it ended
        group = f"rj-call-{next(self._groups)}"
        try:
            answer = self._post(method, {**params, "_group": group}, what=what)
            stats = self._post("core/stats", {"group": group}, what=what, start=False)
        finally:
            with contextlib.suppress(RcloneError):  # the rcd is gone: so are its stats
                self._post("core/stats-delete", {"group": group}, what=what, start=False)
        if stats.get("errors"):
            error = secret_mask.mask(str(stats.get("lastError") or "an error was logged"))
            retryable, reason = self._classify(None, error)
            raise RcloneError(f"{what} failed: {reason}: {error[:400]}", exit_code=None, retryable=retryable,
                              output_tail=error)
        return answer

    def _post(self, method: str, params: dict, *, what: str, start: bool = True) -> dict:
        """One POST; `start=False`: only to the rcd that runs (a call's own stats are gone with its rcd)."""
        with self._lock:
            if not start and (self._proc is None or self._proc.poll() is not None):
                raise RcloneError(f"{what} failed: rclone rcd stopped answering", exit_code=None, retryable=True)
            sock = self._ensure_started()
            self._in_flight += 1
        try:
            conn = UnixHTTPConnection(sock)
            try:
                conn.request("POST", "/" + method, json.dumps(params), {"Content-Type": "application/json"})
                response = conn.getresponse()
                status, body = response.status, response.read()
            finally:
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            # The rcd died or was killed (shutdown deadline): the next call starts a new one.
            raise RcloneError(f"{what} failed: rclone rcd stopped answering ({exc.__class__.__name__})",
                              exit_code=None, retryable=True) from exc
        finally:
            with self._lock:
                self._in_flight -= 1
                self._last_used = time.monotonic()
        try:
            answer = json.loads(body or b"{}")
        except ValueError:
            answer = {"error": body[:400].decode(errors="replace")}
        if status == 200:
            return answer
        error = secret_mask.mask(str(answer.get("error") or f"HTTP {status}"))
        retryable, reason = self._classify(None, error)
        raise RcloneError(f"{what} failed: {reason}: {error[:400]}", exit_code=None, retryable=retryable,
                          output_tail=error)
