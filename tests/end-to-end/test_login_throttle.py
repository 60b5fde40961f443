"""The login throttle never keeps the owner out (jupyterlab/login.py): behind SaladCloud's gateway every client
has one address, so a guesser and the owner look the same. Failed logins are answered late (a delay that
grows per failure), password checks are capped for the whole server, and the right password is checked in
its turn and gets in."""

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


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_logins_wait_longer_each_time_up_to_the_cap_and_never_lock():
    clock = Clock()
    throttle = Throttle(max_delay=30, free_failures=3, first_delay=1, clock=clock)
    delays = [throttle.failed("10.0.0.1") for _ in range(10)]
    assert delays == [0, 0, 0, 1, 2, 4, 8, 16, 30, 30]
    assert throttle.failed("10.0.0.2") == 0  # another address has its own count
    throttle.succeeded("10.0.0.1")
    assert throttle.failed("10.0.0.1") == 0  # the owner got in: the count starts again


def test_an_address_is_forgotten_a_window_after_its_last_failure():
    clock = Clock()
    throttle = Throttle(max_delay=30, free_failures=1, first_delay=1, window=600, clock=clock)
    assert [throttle.failed("a") for _ in range(3)] == [0, 1, 2]
    clock.now += 599
    assert throttle.failed("a") == 4  # still within the window of the last failure
    clock.now += 601
    assert throttle.failed("a") == 0


def test_password_checks_are_capped_for_the_whole_server_first_come_first_served():
    clock = Clock()
    throttle = Throttle(checks_per_second=5, max_queue_wait=1, clock=clock)
    turns = [throttle.turn() for _ in range(7)]
    assert turns == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0, None])  # the 7th would wait 1.2 s: refused
    assert throttle.retry_after() == pytest.approx(0.2)
    clock.now += 0.2
    assert throttle.turn() == pytest.approx(1.0)  # a turn freed: the next attempt queues again
    clock.now += 10
    assert throttle.turn() == 0


def test_the_right_password_gets_a_turn_while_a_guesser_fails_again_and_again():
    """The owner's attempt is never refused because of an address's failures, only queued behind checks."""
    clock = Clock()
    throttle = Throttle(max_delay=60, clock=clock)
    for _ in range(50):  # a guesser who waits for each answer: one check per answer
        assert throttle.turn() is not None
        clock.now += throttle.failed("gateway")
    assert throttle.turn() == 0  # the owner, same address: checked at once


def login(base: str, password: str) -> requests.Response:
    session = requests.Session()
    session.get(f"{base}/login", timeout=10)
    return session.post(f"{base}/login", data={"password": password, "_xsrf": session.cookies.get("_xsrf")},
                        allow_redirects=False, timeout=70)


@pytest.mark.slow
def test_the_owner_logs_in_from_the_guessers_address_and_failures_are_answered_late(s3, daemons):
    password = "short-pw-9"  # 10 characters: works, but start warns about it
    daemon = daemons({**s3.env(), "JUPYTERLAB_PW": password, "RCLONE_JUPYTER_LOGIN_LOCKOUT": "2"},
                     jupyter=True).start()
    base = f"http://127.0.0.1:{daemon.port}"
    wait_until(lambda: requests.get(f"{base}/api", timeout=5).ok, timeout=60, message="JupyterLab answers")
    assert "JUPYTERLAB_PW has 10 characters" in daemon.log()

    took = []
    for attempt in range(6):
        started = time.monotonic()
        assert login(base, f"guess-{attempt}").status_code == 401
        took.append(time.monotonic() - started)
    # The 4th failure waits 1 s, the 5th and 6th 2 s (the cap): a guesser who waits for answers slows down.
    assert min(took[3:]) >= 1.0 and sum(took[4:]) >= 4.0, took
    assert login(base, password).status_code == 302  # the same address, at once: never locked out
    assert login(base, "guess-again").status_code == 401  # the count started again after the owner's login
    wait_until(lambda: "failed logins from 127.0.0.1; this answer waits 2 s" in daemon.log(), timeout=10,
               message="the delay logged")
    assert password not in daemon.log()
