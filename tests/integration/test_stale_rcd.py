"""A daemon killed with SIGKILL leaves its rclone rcd folder in /tmp, and its upload views' folder in /dev/shm: the
next start removes them (rclone/rcd.py, local/upload_view.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import one_s3_server, wait_until
from rclone_jupyter.local.upload_view import HOME_PREFIX, MEMORY_FS, _is_memory_fs
from rclone_jupyter.rclone.rcd import DIR_PREFIX, OLD_DIR_AGE, clean_stale_dirs



@pytest.fixture
def s3(tmp_path_factory):
    """JupyterLab's side is tested here, not the storage's: one S3 server is enough (conftest.one_s3_server)."""
    yield from one_s3_server(tmp_path_factory)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_only_folders_of_dead_owners_are_removed(tmp_path):
    dead = tmp_path / f"{DIR_PREFIX}{dead_pid()}-abcd1234"
    alive = tmp_path / f"{DIR_PREFIX}{os.getpid()}-abcd1234"
    old_silent = tmp_path / f"{DIR_PREFIX}k2j4h5g6"  # an older version's name: no pid
    old_answering = tmp_path / f"{DIR_PREFIX}a1b2c3d4"
    young = tmp_path / f"{DIR_PREFIX}z9y8x7w6"
    other = tmp_path / "rj-other-folder"
    for folder in (dead, alive, old_silent, old_answering, young, other):
        folder.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(old_answering / "rc.sock"))
    listener.listen()
    past = time.time() - OLD_DIR_AGE - 5
    for folder in (old_silent, old_answering):
        os.utime(folder, (past, past))
    try:
        assert clean_stale_dirs(str(tmp_path)) == 2
    finally:
        listener.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (alive, old_answering, young, other))


@pytest.mark.slow
def test_start_removes_the_folder_a_killed_daemon_left(s3, daemons):
    first = daemons(s3.env(), name="first").start()
    (first.data / "a.txt").write_text("pushed through the rcd")
    first.wait_synced()
    tmp = tempfile.gettempdir()
    left = wait_until(lambda: [os.path.join(tmp, n) for n in os.listdir(tmp)
                               if n.startswith(f"{DIR_PREFIX}{first.proc.pid}-")], timeout=10,
                      message="the rcd folder of the first daemon")
    # Its upload views' folder on the memory filesystem (local/upload_view.py), where there is one.
    if _is_memory_fs(MEMORY_FS):
        left += wait_until(lambda: [os.path.join(MEMORY_FS, n) for n in os.listdir(MEMORY_FS)
                                    if n.startswith(f"{HOME_PREFIX}{first.proc.pid}-")], timeout=10,
                           message="the first daemon's folder of upload views (made by its first push)")
    first.stop(signal.SIGKILL)
    assert all(os.path.exists(path) for path in left)  # SIGKILL left them behind
    daemons(s3.env(), name="second").start()
    assert not any(os.path.exists(path) for path in left)
