"""The private state directory: rclone config, bisync listings, status, locks. Never inside the data folder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from rclone_jupyter.errors import PersistenceError

log = logging.getLogger(__name__)


SUBFOLDER = "rclone-jupyter"


def is_private(path: Path) -> bool:
    """True if `path` is a directory owned by us that nobody else can enter (what ensure() creates)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


def private_dir(path: Path) -> Path:
    """Given RCLONE_JUPYTER_STATE_DIR (or the default), return the directory the state really lives in.

    A directory that does not exist yet, or one that is already private to us, is used as it is. An existing
    directory that others can enter (a shared /tmp, a 0755 folder made by someone else) is not ours to
    chmod: the state goes into a private subfolder of it. Pure: the same answer for `start` and `status`.
    """
    if path.exists() and not is_private(path):
        return path / SUBFOLDER
    return path


class StateDir:
    def __init__(self, path: Path):
        self.path = path

    def ensure(self) -> "StateDir":
        """Create the directory (mode 0700). Never changes the mode of a directory we did not create."""
        try:
            self.path.mkdir(parents=True, mode=0o700)
        except FileExistsError:
            if not is_private(self.path):
                raise PersistenceError(
                    f"the state directory {self.path} (RCLONE_JUPYTER_STATE_DIR) can be entered by other users "
                    "or is not a directory; rclone-jupyter keeps credentials there. Point RCLONE_JUPYTER_STATE_DIR "
                    "at a new directory, or make this one private (chmod 700) yourself.") from None
        else:
            os.chmod(self.path, 0o700)  # mkdir's mode is filtered by the umask
        return self

    @property
    def config_path(self) -> Path:
        return self.path / "rclone.conf"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def control_socket(self) -> Path:
        """The running `start`'s control channel (daemon/control.py)."""
        return self.path / "control.sock"

    def workdir(self, remote_name: str) -> Path:
        path = self.path / "bisync" / remote_name
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    def lock_path(self, name: str) -> Path:
        return self.path / f"{name}.lock"

    def scratch(self) -> Path:
        path = self.path / "tmp"
        path.mkdir(exist_ok=True, mode=0o700)
        return path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, readable by the owner only (mode 0600 from the first byte)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, data: dict) -> None:
    write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


class FileLock:
    """An flock on a file: serialises processes (`start` and `sync --once`) that run rclone on one remote."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def write_pid(self) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()


def holder_pid(path: Path) -> int | None:
    """Return the pid written in a lock file whose lock is currently held, else None."""
    probe = FileLock(path)
    if not path.exists():
        return None
    if probe.acquire(blocking=False):
        probe.release()
        return None
    try:
        return int(path.read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None
