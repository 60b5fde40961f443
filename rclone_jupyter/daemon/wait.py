"""`rclone-jupyter wait [PATH...]`: block until the restore has brought these paths (or everything).

JupyterLab starts before the large files of a start have arrived (engine/background.py). A script or a
notebook that needs a model calls `wait` first. It reads what the running `start` publishes in its state
folder: the status document (the restore's state) and the list of paths still to come (TO_COME_FILE).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rclone_jupyter.daemon.status import TO_COME_FILE, current
from rclone_jupyter.state import StateDir

POLL = 0.25  # seconds between looks at the status: well under what a large file takes


@dataclasses.dataclass(frozen=True)
class Answer:
    done: bool
    ok: bool = True
    message: str = ""


def relative_paths(data_dir: Path, paths: Sequence[str], cwd: Path) -> list[str]:
    """Data folder paths of PATH arguments: absolute, or relative to the working directory when that is in the
    data folder (a JupyterLab terminal), else to the data folder. ValueError names a path outside it."""
    out = []
    root = Path(os.path.abspath(data_dir))
    here = Path(os.path.abspath(cwd))
    base = here if here == root or root in here.parents else root
    for given in paths:
        full = Path(os.path.abspath(base / given))
        if full != root and root not in full.parents:
            raise ValueError(f"{given} is not in the data folder {root}")
        out.append("" if full == root else full.relative_to(root).as_posix())
    return out


def still_to_come(to_come: Sequence[str], wanted: Sequence[str]) -> list[str]:
    """Of the wanted paths (files or folders; "" is everything), those with something still to come."""
    return [w for w in wanted if any(w == "" or p == w or p.startswith(w + "/") for p in to_come)]


def look(status: dict, to_come: Sequence[str] | None, wanted: Sequence[str]) -> Answer:
    """Given the status document, the paths still to come and the wanted ones, say whether waiting is over."""
    if not status.get("running"):
        return Answer(True, False, f"rclone-jupyter is not running (phase: {status.get('phase', 'not started')})")
    phase = status.get("phase")
    if phase in ("starting", "restoring"):
        return Answer(False, message="the restore of the small files runs; JupyterLab starts after it")
    if phase != "running":
        return Answer(True, False, f"rclone-jupyter is {phase}: the restore stopped before everything arrived")
    restore = status.get("restore") or {}
    if restore.get("state") == "failed":
        return Answer(True, False, "the restore failed: see `rclone-jupyter status`")
    if restore.get("state") != "running":
        return Answer(True, True, "everything is restored")
    if to_come is None:
        return Answer(False, message="waiting for the list of files still to come")
    missing = still_to_come(to_come, wanted or [""])
    if not missing:
        return Answer(True, True, "arrived" if wanted else "everything is restored")
    return Answer(False, message=f"{len(missing)} path(s) still to come")


def read_to_come(state: StateDir) -> list[str] | None:
    try:
        return (state.path / TO_COME_FILE).read_text().splitlines()
    except FileNotFoundError:
        return None


def wait(state: StateDir, wanted: Sequence[str], timeout: float | None,
         clock: Callable[[], float] = time.monotonic) -> Answer:
    """Look until the answer is final or `timeout` seconds have passed (then not done, not ok)."""
    deadline = None if timeout is None else clock() + timeout
    while True:
        answer = look(current(state), read_to_come(state), wanted)
        if answer.done:
            return answer
        if deadline is not None and clock() >= deadline:
            return Answer(False, False, f"timed out: {answer.message}")
        time.sleep(POLL)
