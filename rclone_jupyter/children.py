"""Every child process (each rclone run, the rcd, JupyterLab) starts here, so that each dies with the daemon.

The kernel's PR_SET_PDEATHSIG kills a child when its parent *thread* exits, not its parent process. Two rules
follow:
- It is set by util-linux's `setpriv --pdeathsig KILL -- CMD`, an exec wrapper, not by a `preexec_fn`:
  Python documents `preexec_fn` as unsafe once threads exist (the child can deadlock before exec). util-linux
  is Essential in Debian and Ubuntu, so every image has setpriv (2.38 on bookworm; --pdeathsig since 2.33).
- Every child is forked by one long-lived thread (the spawner), so "the parent thread" lives as long as the
  daemon: an rcd started by the restore thread, which ends, is not killed with it. `stop()` ends the spawner
  last; the kernel then kills whatever child is still running.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future

log = logging.getLogger(__name__)


class Spawner:
    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wrapper: tuple[str, ...] | None = None

    def popen(self, argv: Sequence[str], **kwargs) -> subprocess.Popen:
        """subprocess.Popen(argv, **kwargs), started from the spawner thread, dying with this process."""
        _must_exist(argv[0], kwargs.get("env"))
        future: Future = Future()
        with self._lock:
            if self._thread is None:
                self._wrapper = _die_with_us()
                self._thread = threading.Thread(target=self._serve, name="spawner", daemon=True)
                self._thread.start()
            self._queue.put((tuple(argv), kwargs, future))
        return future.result()

    def _serve(self) -> None:
        while (item := self._queue.get()) is not None:
            argv, kwargs, future = item
            try:
                future.set_result(subprocess.Popen((*self._wrapper, *argv), **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)

    def stop(self) -> None:
        """End the spawner thread (a later popen starts a new one). Children still running are killed."""
        with self._lock:
            if self._thread is None:
                return
            self._queue.put(None)
            self._thread.join()
            self._thread = None


def _must_exist(program: str, env: dict | None) -> None:
    """Raise as Popen would for a missing program: through the wrapper it would be setpriv's exit code."""
    path = (os.environ if env is None else env).get("PATH", os.defpath)
    if shutil.which(program, path=path) is None:
        raise FileNotFoundError(errno.ENOENT, "no such executable", program)


def _die_with_us() -> tuple[str, ...]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        log.warning("setpriv (util-linux) is not installed: rclone and JupyterLab may outlive this process if it "
                    "is killed with SIGKILL. Install util-linux to have them stopped with it.")
        return ()
    return (setpriv, "--pdeathsig", "KILL", "--")


spawner = Spawner()  # one per process: the daemon's, or `sync --once`'s
