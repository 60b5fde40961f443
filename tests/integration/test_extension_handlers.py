"""The server extension's handlers (jupyterlab/extension.py), in-process with pytest-jupyter's `jp_fetch`.

The daemon is a small fake on a unix socket: our own control server (daemon/control.py) with scripted routes,
standing in for our daemon, not for any storage. The end-to-end test with a real daemon and a real JupyterLab
is tests/end-to-end/test_jupyter_extension.py.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from tornado.httpclient import HTTPClientError

# The fixtures for this module only (their autouse ones too), not for the whole suite.
from pytest_jupyter.jupyter_server import *  # noqa: F403,F401
from rclone_jupyter.daemon.control import ControlServer
from rclone_jupyter.state import StateDir

RUNNING = {"phase": "running", "running": True, "persistent": True, "last_sync": "2026-01-01T00:00:00.000+00:00",
           "pending": 0, "last_error": None, "remotes": {}}


class FakeDaemon:
    """Answers GET /status and POST /sync as the daemon does; a sync can be held until released."""

    def __init__(self, state: StateDir):
        self.status = dict(RUNNING)
        self.syncs = 0
        self.answer = {"ok": True, "error": None}
        self.hold = threading.Event()
        self.hold.set()
        self.syncing = threading.Event()
        self.asked: list = []  # the requests of the undo routes, as the daemon got them
        self.server = ControlServer(state.control_socket, {("GET", "/status"): lambda r: (200, self.status),
                                                           ("POST", "/sync"): self._sync,
                                                           ("GET", "/history"): self._history,
                                                           ("POST", "/recover"): self._recover})

    def _history(self, request):
        self.asked.append(("history", dict(request.query)))
        return 200, {"ok": True, "error": None, "versions": [], "count": 0, "keep_days": 7}

    def _recover(self, request):
        self.asked.append(("recover", dict(request.body)))
        return 200, {"ok": True, "error": None, "recovered": [request.body["path"]], "kept_aside": []}

    def _sync(self, _request):
        self.syncs += 1
        self.syncing.set()
        self.hold.wait(20)
        return 200, self.answer


@pytest.fixture
def state(tmp_path):
    return StateDir(tmp_path / "rj-state").ensure()


@pytest.fixture
def jp_server_config(state):
    return {"ServerApp": {"jpserver_extensions": {"rclone_jupyter.jupyterlab.extension": True}},
            "RcloneJupyter": {"state_dir": str(state.path)}}


@pytest.fixture
def daemon(state):
    fake = FakeDaemon(state)
    fake.server.start()
    yield fake
    fake.hold.set()
    fake.server.stop()


@pytest.fixture
def fetch(jp_fetch, jp_asyncio_loop):
    """jp_fetch, run to its answer (these tests are plain functions)."""
    def call(route: str, **kwargs):
        return jp_asyncio_loop.run_until_complete(jp_fetch("rclone-jupyter", "api", route, **kwargs))
    return call


def post(fetch, route: str = "sync", expect: int | None = None):
    try:
        response = fetch(route, method="POST", body=b"")
    except HTTPClientError as exc:
        assert exc.code == expect, exc
        return exc.code, json.loads(exc.response.body)
    return response.code, json.loads(response.body)


def test_status_is_the_daemons_answer(daemon, fetch):
    daemon.status = {**RUNNING, "pending": 2, "pending_paths": ["a.ipynb", "b.csv"]}
    response = fetch("status")
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Cache-Control"] == "no-store"
    assert json.loads(response.body) == daemon.status


def test_status_without_a_daemon_says_not_running(state, fetch):
    body = json.loads(fetch("status").body)
    assert body["running"] is False and body["last_sync"] is None and body["pending"] == 0


def test_save_now_is_the_daemons_sync(daemon, fetch):
    assert post(fetch) == (200, {"ok": True, "error": None})
    daemon.answer = {"ok": False, "error": "s3://bucket/me: the bucket cannot be reached"}
    assert post(fetch) == (200, daemon.answer)
    assert daemon.syncs == 2


def test_save_now_refuses_without_a_bucket_or_a_daemon(daemon, state, fetch):
    daemon.status = {**RUNNING, "persistent": False}
    assert post(fetch, expect=409) == (409, {"ok": False, "error": "no bucket is configured: there is nothing to "
                                                                   "save to"})
    daemon.server.stop()
    code, body = post(fetch, expect=409)
    assert code == 409 and body["ok"] is False and "not running" in body["error"]
    assert daemon.syncs == 0


def test_a_long_save_does_not_block_the_status(daemon, fetch, jp_fetch, jp_asyncio_loop):
    """The client blocks; the handler runs it off tornado's loop, so the status still answers meanwhile."""
    daemon.hold.clear()

    async def both():
        saving = asyncio.ensure_future(jp_fetch("rclone-jupyter", "api", "sync", method="POST", body=b""))
        while not daemon.syncing.is_set():
            await asyncio.sleep(0.01)
        status = await jp_fetch("rclone-jupyter", "api", "status")  # answered while the sync is held
        assert not saving.done()
        daemon.hold.set()
        return status, await saving

    status, saved = jp_asyncio_loop.run_until_complete(both())
    assert json.loads(status.body)["phase"] == "running"
    assert json.loads(saved.body) == {"ok": True, "error": None}


def test_the_state_folder_comes_from_the_extensions_own_config(daemon, fetch, monkeypatch, tmp_path):
    # JupyterLab's environment names another folder: the extension's own config wins.
    monkeypatch.setenv("RCLONE_JUPYTER_STATE_DIR", str(tmp_path / "elsewhere"))
    assert json.loads(fetch("status").body) == daemon.status


def test_without_config_the_state_folder_is_the_environments(tmp_path, monkeypatch):
    from rclone_jupyter.jupyterlab.config import RcloneJupyter

    monkeypatch.setenv("RCLONE_JUPYTER_STATE_DIR", str(tmp_path / "from-env"))
    assert RcloneJupyter().state_dir == str(tmp_path / "from-env")


def test_the_handlers_need_the_login(daemon, jp_fetch, jp_asyncio_loop):
    with pytest.raises(HTTPClientError) as info:
        jp_asyncio_loop.run_until_complete(jp_fetch("rclone-jupyter", "api", "status", headers={"Authorization": ""}))
    assert info.value.code == 403


def test_history_and_recover_are_the_daemons_answers(daemon, fetch):
    assert json.loads(fetch("history", params={"search": "results"}).body)["keep_days"] == 7
    response = fetch("recover", method="POST", body=json.dumps({"path": "a b.txt", "at": "2026-12-01T20:42:05Z"}))
    assert json.loads(response.body)["recovered"] == ["a b.txt"]
    assert daemon.asked == [("history", {"search": ["results"]}),
                            ("recover", {"path": "a b.txt", "at": "2026-12-01T20:42:05Z"})]


def test_recover_wants_a_path_and_a_time_and_a_running_daemon(daemon, fetch):
    for body in (b"", b"[]", json.dumps({"path": "a.txt"}).encode(), json.dumps({"path": 1, "at": "x"}).encode()):
        with pytest.raises(HTTPClientError) as info:
            fetch("recover", method="POST", body=body)
        assert info.value.code == 400
    assert daemon.asked == []
    daemon.server.stop()
    with pytest.raises(HTTPClientError) as info:
        fetch("recover", method="POST", body=json.dumps({"path": "a.txt", "at": "2026-12-01T20:42:05Z"}))
    assert info.value.code == 409 and "not running" in json.loads(info.value.response.body)["error"]
