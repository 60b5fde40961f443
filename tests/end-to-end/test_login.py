"""Failed JupyterLab logins are throttled per client address (jupyterlab/login.py), against a real running JupyterLab."""

from __future__ import annotations

import time

import pytest
import requests

from conftest import one_s3_server, wait_until
from rclone_jupyter.jupyterlab.login import Throttle



@pytest.fixture
def s3(tmp_path_factory):
    """JupyterLab's side is tested here, not the storage's: one S3 server is enough (conftest.one_s3_server)."""
    yield from one_s3_server(tmp_path_factory)


def test_throttle_locks_a_client_out_after_five_failures_in_a_window_then_forgets():
    now = [1000.0]
    throttle = Throttle(max_failures=5, window=60, lockout=30, clock=lambda: now[0])
    for _ in range(4):
        assert not throttle.failed("10.0.0.1")
        now[0] += 10
    assert throttle.blocked("10.0.0.1") == 0
    now[0] += 25  # the first failure left the 60 s window: still 4 in it
    assert not throttle.failed("10.0.0.1")
    assert throttle.failed("10.0.0.1")  # the 5th within a minute
    assert throttle.blocked("10.0.0.1") == pytest.approx(30)
    assert throttle.blocked("10.0.0.2") == 0  # another client is not affected
    now[0] += 30.5
    assert throttle.blocked("10.0.0.1") == 0
    assert not throttle.failed("10.0.0.1")  # a fresh start after the wait


def login(base: str, password: str) -> requests.Response:
    session = requests.Session()
    session.get(f"{base}/login", timeout=10)
    return session.post(f"{base}/login", data={"password": password, "_xsrf": session.cookies.get("_xsrf")},
                        allow_redirects=False, timeout=10)


@pytest.mark.slow
def test_failed_logins_are_throttled_and_the_good_password_works_after_the_wait(s3, daemons):
    password = "short-pw-9"  # 10 characters: works, but start warns about it
    daemon = daemons({**s3.env(), "JUPYTERLAB_PW": password, "RCLONE_JUPYTER_LOGIN_LOCKOUT": "3"},
                     jupyter=True).start()
    base = f"http://127.0.0.1:{daemon.port}"
    wait_until(lambda: requests.get(f"{base}/api", timeout=5).ok, timeout=60, message="JupyterLab answers")
    assert "JUPYTERLAB_PW has 10 characters" in daemon.log()

    for attempt in range(5):
        assert login(base, f"guess-{attempt}").status_code == 401
    refused = login(base, password)  # locked out: even the good password waits
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 4
    locked_at = time.monotonic()
    assert login(f"http://[::1]:{daemon.port}", password).status_code == 302  # another client address
    wait_until(lambda: "5 failed logins from 127.0.0.1" in daemon.log(), timeout=10, message="the lockout logged")
    assert password not in daemon.log()

    time.sleep(max(0.0, int(refused.headers["Retry-After"]) - (time.monotonic() - locked_at)))
    assert login(base, password).status_code == 302  # at once after the wait
