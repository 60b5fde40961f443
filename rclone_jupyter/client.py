"""Asking the running `start`: its status, and "save everything now", answered in the same call.

Used by `rclone-jupyter status` and `sync --once` in a shell, and by the JupyterLab extension. It talks HTTP to
the daemon's control socket in the private state folder (daemon/control.py); a folder with no daemon
answering raises DaemonNotRunning.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from pathlib import Path

from rclone_jupyter.errors import DaemonNotRunning
from rclone_jupyter.state import StateDir
from rclone_jupyter.unixhttp import UnixHTTPConnection

STATUS_TIMEOUT = 10.0


class ControlClient:
    def __init__(self, state_dir: Path | str):
        self.state = StateDir(Path(state_dir))
        self.socket = self.state.control_socket

    def status(self, timeout: float = STATUS_TIMEOUT) -> dict:
        """The status document, as `status --json` prints it."""
        try:
            code, answer = self._call("GET", "/status", timeout=timeout)
        except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
            raise DaemonNotRunning(f"the running rclone-jupyter did not answer ({type(exc).__name__})") from None
        if code != 200:
            raise DaemonNotRunning(f"the running rclone-jupyter answered HTTP {code}: {answer.get('error')}")
        return answer

    def sync(self, timeout: float) -> tuple[bool, str | None]:
        """Push everything pending, then look at the bucket; wait for that. Return (ok, error text)."""
        answer, error = self._ask("/sync", timeout)
        if answer is None:
            return False, error
        return bool(answer.get("ok")), answer.get("error")

    def plan(self, timeout: float) -> tuple[dict[str, list[str]] | None, str | None]:
        """What a sync would do now, changing nothing: ({cloud: lines}, None) or (None, error text)."""
        answer, error = self._ask("/plan", timeout)
        if answer is None:
            return None, error
        return (answer.get("plan") if answer.get("ok") else None), answer.get("error")

    def history(self, search: str = "", timeout: float = 60) -> dict:
        """The newest kept versions (daemon/undo_routes.py): {ok, error, versions, count, keep_days, ...}."""
        query = f"?{urllib.parse.urlencode({'search': search})}" if search else ""
        try:
            code, answer = self._call("GET", f"/history{query}", timeout=timeout)
        except (TimeoutError, http.client.HTTPException, ConnectionError) as exc:
            return {"ok": False, "error": f"the running rclone-jupyter did not answer ({type(exc).__name__})",
                    "versions": [], "count": 0}
        return answer if code == 200 else {"ok": False, "versions": [], "count": 0,
                                           "error": answer.get("error") or f"HTTP {code}"}

    def recover(self, path: str, at: str, timeout: float = 300) -> dict:
        """Bring one kept version back into the data folder: {ok, error, recovered, kept_aside}."""
        answer, error = self._ask("/recover", timeout, body={"path": path, "at": at})
        return answer if answer is not None else {"ok": False, "error": error}

    def _ask(self, path: str, timeout: float, body: dict | None = None) -> tuple[dict | None, str | None]:
        """POST a request that the daemon answers when it is done: (its answer, None) or (None, why not)."""
        try:
            code, answer = self._call("POST", path, body=body, timeout=timeout)
        except TimeoutError:
            return None, f"no answer from the running rclone-jupyter within {timeout:g} s"
        except (http.client.HTTPException, ConnectionError):
            return None, "the running rclone-jupyter stopped before it answered"
        if code != 200:
            return None, answer.get("error") or f"the running rclone-jupyter answered HTTP {code}"
        return answer, None

    def _call(self, method: str, path: str, *, body: dict | None = None, timeout: float) -> tuple[int, dict]:
        conn = UnixHTTPConnection(self.socket, timeout=timeout)
        try:
            try:
                conn.connect()
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                raise DaemonNotRunning(
                    f"no 'rclone-jupyter start' is running with the state directory {self.state.path}") from exc
            except BlockingIOError as exc:  # its backlog stayed full for the whole timeout: it does not answer
                raise TimeoutError("the control socket's backlog is full") from exc
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, data, {"Content-Type": "application/json"} if data else {})
            response = conn.getresponse()
            text = response.read()
        finally:
            conn.close()
        try:
            answer = json.loads(text or b"{}")
        except ValueError:
            answer = None
        return response.status, answer if isinstance(answer, dict) else {}
