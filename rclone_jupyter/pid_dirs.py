"""Private folders that belong to one process (`<prefix><pid>-<random>`, mode 0700), and their removal once
that process is gone: a daemon killed with SIGKILL leaves them behind, and the next start clears them."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable

log = logging.getLogger(__name__)


def make(prefix: str, parent: str | None = None) -> str:
    """A new private folder of this process in `parent` (the temporary folder if None)."""
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def clean_stale(prefix: str, parent: str | None = None, *,
                unnamed_stale: Callable[[str, os.stat_result], bool] = lambda _path, _st: False) -> int:
    """Remove the folders `<prefix><pid>-*` in `parent` (ours only) whose process is gone; return how many.

    Folders of living processes, and of other users, are left alone. `unnamed_stale(path, stat)` decides for
    a folder of the prefix without a pid in its name (made by an older version)."""
    parent = parent or tempfile.gettempdir()
    removed = 0
    try:
        names = [n for n in os.listdir(parent) if n.startswith(prefix)]
    except OSError:
        return 0
    for name in names:
        path = os.path.join(parent, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        pid_text, dash, _rest = name[len(prefix):].partition("-")
        stale = not alive(int(pid_text)) if pid_text.isdigit() and dash else unnamed_stale(path, st)
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    if removed:
        log.debug("removed %d stale folder(s) %s* from %s", removed, prefix, parent)
    return removed
