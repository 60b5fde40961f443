"""The control channel (daemon/control.py, client.py): HTTP on a unix socket in the private state folder.

Real sockets, real HTTP; the routes are small functions standing in for the supervisor's. The real routes are
exercised end to end by `sync --once` and `status` in tests/integration/test_sync_s3.py and
tests/end-to-end/test_jupyter_extension.py.
"""

from __future__ import annotations

import socket
import stat
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from rclone_jupyter.client import ControlClient
from rclone_jupyter.daemon.control import ControlServer
from rclone_jupyter.errors import DaemonNotRunning
from rclone_jupyter.logs import secret_mask
from rclone_jupyter.state import StateDir


@pytest.fixture
def state(tmp_path):
    return StateDir(tmp_path / "state").ensure()


def serve(state: StateDir, routes) -> ControlServer:
    return ControlServer(state.control_socket, routes).start()


def test_status_and_sync_answer_in_the_same_call(state):
    server = serve(state, {("GET", "/status"): lambda r: (200, {"phase": "running", "running": True}),
                           ("POST", "/sync"): lambda r: (200, {"ok": False, "error": "bucket unreachable"})})
    try:
        client = ControlClient(state.path)
        assert client.status() == {"phase": "running", "running": True}
        assert client.sync(timeout=10) == (False, "bucket unreachable")
        # The socket is private to its owner, inside the 0700 state folder.
        assert stat.S_IMODE(state.control_socket.stat().st_mode) == 0o600
    finally:
        server.stop()
    assert not state.control_socket.exists()


def test_each_caller_gets_the_answer_to_its_own_request(state):
    """Eight `sync --once` at once: each gets one answer, and no two callers get the same one."""
    calls = []
    lock = threading.Lock()
    everyone_in = threading.Barrier(8, timeout=10)

    def sync(_request):
        with lock:
            calls.append(len(calls))
            number = calls[-1]
        everyone_in.wait()  # all eight are being answered at the same time
        return 200, {"ok": True, "error": f"answer {number}"}

    server = serve(state, {("POST", "/sync"): sync})
    try:
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: ControlClient(state.path).sync(timeout=20), range(8)))
    finally:
        server.stop()
    assert sorted(error for _, error in answers) == sorted(f"answer {n}" for n in range(8))


def test_no_daemon_is_daemon_not_running(state):
    with pytest.raises(DaemonNotRunning, match="no 'rclone-jupyter start' is running"):
        ControlClient(state.path).status()
    # A socket file left by a daemon killed with SIGKILL: nobody listens on it.
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(state.control_socket))
    assert state.control_socket.exists()
    with pytest.raises(DaemonNotRunning):
        ControlClient(state.path).sync(timeout=5)


def test_unknown_routes_and_bad_bodies_are_refused_not_crashed(state):
    server = serve(state, {("GET", "/status"): lambda r: (200, {"body": dict(r.body)})})
    try:
        client = ControlClient(state.path)
        assert client._call("GET", "/nothing", timeout=5)[0] == 404
        assert client._call("POST", "/status", timeout=5)[0] == 405
        assert client._call("GET", "/status", body={"paths": ["a"]}, timeout=5) == (200, {"body": {"paths": ["a"]}})
        assert client.status() == {"body": {}}
    finally:
        server.stop()


def test_a_failing_route_answers_500_and_the_channel_keeps_working(state):
    def broken(_request):
        raise KeyError("oops")

    server = serve(state, {("POST", "/sync"): broken, ("GET", "/status"): lambda r: (200, {"ok": 1})})
    try:
        client = ControlClient(state.path)
        ok, error = client.sync(timeout=5)
        assert not ok and "KeyError" in error
        assert client.status() == {"ok": 1}
    finally:
        server.stop()


def test_answers_are_masked(state):
    secret_mask.add("control-test-Secret-8812")
    server = serve(state, {("GET", "/status"): lambda r: (200, {"last_error": "denied for control-test-Secret-8812"})})
    try:
        assert "control-test-Secret-8812" not in ControlClient(state.path).status()["last_error"]
    finally:
        server.stop()


def test_a_state_folder_too_deep_for_a_socket_address(tmp_path):
    deep = StateDir(tmp_path / ("d" * 60) / ("e" * 60)).ensure()
    assert len(str(deep.control_socket)) > 108
    server = serve(deep, {("GET", "/status"): lambda r: (200, {"deep": True})})
    try:
        assert deep.control_socket.exists()
        assert ControlClient(deep.path).status() == {"deep": True}
    finally:
        server.stop()


def test_stop_waits_for_the_answer_being_given(state):
    entered, release = threading.Event(), threading.Event()

    def slow(_request):
        entered.set()
        release.wait(10)
        return 200, {"ok": True, "error": None}

    server = serve(state, {("POST", "/sync"): slow})
    answers = []
    caller = threading.Thread(target=lambda: answers.append(ControlClient(state.path).sync(timeout=20)))
    caller.start()
    assert entered.wait(10)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(0.2)
    assert stopper.is_alive()  # stop() cannot end while an answer is being given
    release.set()
    caller.join(20)
    stopper.join(20)
    assert answers == [(True, None)] and not stopper.is_alive()


def test_a_full_backlog_makes_callers_wait_not_fail(state):
    """Callers beyond the listen backlog wait for room (bounded by their timeout), as a busy daemon's would:
    each gets an answer to give the user, never a connection error."""
    with socket.socket(socket.AF_UNIX) as stuck:  # a daemon that stopped accepting: its backlog fills up
        stuck.bind(str(state.control_socket))
        stuck.listen(0)
        answers = [ControlClient(state.path).sync(timeout=0.3) for _ in range(4)]
    assert answers == [(False, "no answer from the running rclone-jupyter within 0.3 s")] * 4


def test_a_caller_that_never_sends_its_request_cannot_hang_the_stop(state):
    server = serve(state, {("GET", "/status"): lambda r: (200, {"running": True})})
    silent = socket.socket(socket.AF_UNIX)
    silent.connect(str(state.control_socket))  # connected, and never a byte: a client killed half-way
    try:
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        stopper.join(20)  # the handler's read timeout (5 s), then the join
        assert not stopper.is_alive(), "stop() waited for a caller that never spoke"
    finally:
        silent.close()
