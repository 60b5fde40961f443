"""The push path's long-running `rclone rcd` (rclone/rcd.py), with real rclone against a real S3 server.

What must hold: a push lands whether the rcd is warm, stopped for idleness or killed under us; its failures
are classified like a failed rclone run; it is private (socket folder 0700, no secret in its argv) and does
not outlive a daemon killed with SIGKILL.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import time

import pytest

from conftest import Bucket, make_engine, needs, wait_until
from rclone_jupyter.model.changes import Batch
from rclone_jupyter.errors import RcloneError


@pytest.fixture(autouse=True)
def rcd_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="rclone_jupyter.rclone.rcd")


def starts(caplog) -> int:
    """How many rcd processes were started, as the rcd logs each start."""
    return sum(1 for r in caplog.records if r.name == "rclone_jupyter.rclone.rcd" and r.msg.startswith(
        "rclone rcd started"))


@pytest.fixture
def engine(s3, tmp_path):
    engine = make_engine(s3.env(), tmp_path)
    engine.restore()  # creates the data folder
    engine.restore()
    engine.establish()
    yield engine
    engine.rclone.close()


def write_and_push(engine, rel: str, content: bytes):
    path = engine.data_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return engine.push(Batch(frozenset({rel})))


def test_push_lands_after_the_rcd_was_killed(s3, engine, tmp_path, caplog):
    bucket = Bucket(tmp_path, s3.env())
    assert write_and_push(engine, "a.txt", b"first").uploaded == 1
    before = starts(caplog)  # (the restore of an empty folder may have started it already)
    pid = engine.rclone.rcd._proc.pid
    os.kill(pid, signal.SIGKILL)  # a crash of the rcd between two pushes
    wait_until(lambda: engine.rclone.rcd._proc.poll() is not None, message="the rcd to die")
    # The first call fails (retryable), the retry starts a new rcd: nothing is lost.
    assert write_and_push(engine, "b/c.txt", b"second").uploaded == 1
    assert bucket.files() == {"a.txt": b"first", "b/c.txt": b"second"}
    assert starts(caplog) == before + 1


def test_idle_rcd_stops_and_the_next_push_starts_it_again(s3, engine, tmp_path, caplog):
    bucket = Bucket(tmp_path, s3.env())
    engine.rclone.rcd.idle_seconds = 0.3
    write_and_push(engine, "nb.ipynb", b"{}")
    before = starts(caplog)
    proc = engine.rclone.rcd._proc
    wait_until(lambda: proc.poll() is not None, timeout=10, message="the idle rcd to stop")
    assert engine.rclone.rcd._proc is None
    write_and_push(engine, "nb.ipynb", b'{"cells": []}')
    assert bucket.files() == {"nb.ipynb": b'{"cells": []}'}
    assert starts(caplog) == before + 1
    # Deletes go through the rcd too.
    (engine.data_dir / "nb.ipynb").unlink()
    assert engine.push(Batch(frozenset({"nb.ipynb"}))).deleted == 1
    assert bucket.files() == {}


def test_rcd_is_private(s3, engine):
    write_and_push(engine, "x.txt", b"x")
    proc = engine.rclone.rcd._proc
    folder = os.path.dirname(engine.rclone.rcd._socket())
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    cmdline = open(f"/proc/{proc.pid}/cmdline", "rb").read().decode()
    environ = open(f"/proc/{proc.pid}/environ", "rb").read().decode()
    for secret in s3.secrets():
        assert secret not in cmdline and secret not in environ
    assert "rcd" in cmdline and "--rc-addr" in cmdline
    engine.rclone.close()
    assert proc.poll() is not None and not os.path.exists(folder)


def test_refused_credentials_on_push_are_not_retried(s3, tmp_path):
    needs(s3, "checks_signatures", "it accepts any secret, so a wrong one cannot be refused")
    engine = make_engine({**s3.env(), "AWS_SECRET_ACCESS_KEY": "wrong-" + s3.secret}, tmp_path)
    engine.data_dir.mkdir(parents=True)
    try:
        (engine.data_dir / "a.txt").write_text("a")
        started = time.monotonic()
        with pytest.raises(RcloneError) as info:
            engine.push(Batch(frozenset({"a.txt"})))
        assert not info.value.retryable
        assert "credentials were refused" in str(info.value)
        assert "wrong-" not in str(info.value)
        assert time.monotonic() - started < 20  # not four attempts with backoff
    finally:
        engine.rclone.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _cmdline(pid: int) -> list[bytes]:
    """A process's argv, or [] if it is gone (a short rclone run may end between listing and reading)."""
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return []


def test_rcd_does_not_outlive_a_killed_daemon(s3, daemons):
    daemon = daemons(s3.env()).start()
    (daemon.data / "note.txt").write_text("saved")
    daemon.wait_synced()

    def rcd_pids() -> list[int]:
        return [p for p in _children(daemon.proc.pid) if b"rcd" in _cmdline(p)[1:2]]

    pids = wait_until(rcd_pids, message="the daemon's rcd")
    daemon.kill()  # SIGKILL: no shutdown, no flush

    def gone() -> bool:
        return all(not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[0]
                   == "Z" for p in pids)

    wait_until(gone, timeout=10, message="the rcd to die with its daemon")
