"""Asking the running `start` to save everything now, and getting the answer to *that* request.

A client (`rclone-jupyter sync --once`, the JupyterLab extension's "Save now") writes a request file named by a
fresh id into the state dir's private `requests/` folder, then sends SIGUSR1 to the daemon. The daemon takes
every request file it finds, runs one flush for all of them, and writes `<id>.answer.json` beside each. The
client waits for its own answer: two asks in the same second, or an ask while an older one is running, each
get the result of a flush that started after they asked (a timestamp compare could not tell them apart).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

from rclone_jupyter.errors import DaemonNotRunning
from rclone_jupyter.state import StateDir, holder_pid, read_json, write_json

POLL = 0.05


def _requests_dir(state: StateDir) -> Path:
    path = state.path / "requests"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def daemon_pid(state: StateDir) -> int | None:
    """The pid of the running `start` on this state dir, or None."""
    return holder_pid(state.lock_path("daemon")) if state.path.exists() else None


def request_sync(state_dir: Path, timeout: float) -> tuple[bool, str | None]:
    """Ask the running `start` to push everything pending and look at the bucket; wait for its answer.

    Return (ok, error text). Raise DaemonNotRunning if no `start` runs on this state dir.
    """
    answer = _ask(state_dir, timeout, {})
    return bool(answer.get("ok")), answer.get("error")


def request_plan(state_dir: Path, timeout: float) -> tuple[dict[str, list[str]] | None, str | None]:
    """Ask the running `start` what a sync would do now, changing nothing: ({remote: lines}, None) or
    (None, error text). Raise DaemonNotRunning if no `start` runs on this state dir."""
    answer = _ask(state_dir, timeout, {"dry_run": True})
    return (answer.get("plan") if answer.get("ok") else None), answer.get("error")


def _ask(state_dir: Path, timeout: float, request: dict) -> dict:
    state = StateDir(Path(state_dir))
    pid = daemon_pid(state)
    if not pid:
        raise DaemonNotRunning(f"no 'rclone-jupyter start' is running with the state directory {state.path}")
    folder = _requests_dir(state)
    request_id = uuid.uuid4().hex
    write_json(folder / f"{request_id}.json", {"id": request_id, "asked": time.time(), **request})
    answer_path = folder / f"{request_id}.answer.json"
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        (folder / f"{request_id}.json").unlink(missing_ok=True)
        raise DaemonNotRunning("the running 'rclone-jupyter start' exited before it could be asked") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = read_json(answer_path)
        if answer is not None:
            answer_path.unlink(missing_ok=True)
            return answer
        if not daemon_pid(state):
            return {"ok": False, "error": "the running rclone-jupyter stopped before it answered"}
        time.sleep(POLL)
    (folder / f"{request_id}.json").unlink(missing_ok=True)
    return {"ok": False, "error": f"no answer from the running rclone-jupyter within {timeout:g} s"}


def take_requests(state: StateDir) -> list[tuple[str, bool]]:
    """Daemon side: (id, dry run?) of every request waiting, removed from the folder (each is answered once)."""
    folder = _requests_dir(state)
    taken = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(".answer.json"):
            continue
        request = read_json(path) or {}
        taken.append((path.stem, bool(request.get("dry_run"))))
        path.unlink(missing_ok=True)
    return taken


def answer(state: StateDir, request_id: str, ok: bool, error: str | None, **extra) -> None:
    """Daemon side: the answer to one request (`extra`: a dry run's plan)."""
    write_json(_requests_dir(state) / f"{request_id}.answer.json", {"id": request_id, "ok": ok, "error": error,
                                                                     "finished": time.time(), **extra})
