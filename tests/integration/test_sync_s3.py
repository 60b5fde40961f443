"""End to end on S3: a real `rclone-jupyter start`, real rclone, a real S3 server (rclone serve s3)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time

import pytest

from conftest import Bucket, needs, settled, synced_tree, wait_until


@pytest.fixture(params=["targeted", "bisync"])
def push_mode(request):
    return request.param


def test_restore_of_a_nested_tree(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    content = {
        "top.ipynb": b'{"cells": []}',
        "a/b/c/deep.txt": b"deep",
        "a/sibling.csv": b"x,y\n1,2\n",
        "data with space/naïve ünïcode.txt": "ünï".encode(),
        "empty.txt": b"",
    }
    for rel, data in content.items():
        bucket.put(rel, data)
    daemon = daemons(s3.env()).start()
    assert synced_tree(daemon.data) == content
    assert (daemon.data / "welcome.txt").is_file()
    # The restore did not change the bucket.
    assert bucket.files() == content
    assert daemon.stop() == 0


def test_every_kind_of_change_propagates(s3, daemons, tmp_path, push_mode):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("keep.txt", b"keep")
    bucket.put("old/inner/x.txt", b"x")
    bucket.put("gone.txt", b"bye")
    bucket.put("olddir/y.txt", b"y")
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_PUSH_MODE": push_mode}).start()
    data = daemon.data

    (data / "new.txt").write_text("created")  # create
    (data / "nested/deeper").mkdir(parents=True)  # create in new folders
    (data / "nested/deeper/n.txt").write_text("nested")
    (data / "keep.txt").write_text("modified")  # modify
    (data / "gone.txt").unlink()  # delete a file
    os.rename(data / "new.txt", data / "renamed.txt")  # rename a file
    os.rename(data / "old", data / "moved")  # move a folder with its content
    shutil.rmtree(data / "olddir")  # delete a folder with its content

    expected = {
        "keep.txt": b"modified",
        "renamed.txt": b"created",
        "nested/deeper/n.txt": b"nested",
        "moved/inner/x.txt": b"x",
    }
    settled(lambda: bucket.files() == expected, timeout=30, message="bucket == expected")
    assert synced_tree(data) == expected
    assert daemon.stop() == 0
    assert bucket.files() == expected


def test_a_burst_of_500_writes_is_coalesced(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": "0.5", "RCLONE_JUPYTER_MAX_DELAY": "5"}).start()
    for i in range(500):
        (daemon.data / f"f{i % 50:02d}.txt").write_text(f"version {i}")
    expected = {f"f{j:02d}.txt": f"version {450 + j}".encode() for j in range(50)}
    settled(lambda: bucket.files() == expected, timeout=30, message="the last version of each file")
    daemon.wait_synced()
    runs = re.findall(r"synced \d+ change\(s\)", daemon.log())
    assert 1 <= len(runs) <= 5, runs
    assert daemon.stop() == 0


def test_fresh_start_with_empty_data_folder_deletes_nothing(s3, daemons, tmp_path, push_mode):
    bucket = Bucket(tmp_path, s3.env())
    content = {f"nb{i}.ipynb": b"{}" for i in range(3)} | {"sub/data.bin": os.urandom(1000)}
    for rel, data in content.items():
        bucket.put(rel, data)
    env = {**s3.env(), "RCLONE_JUPYTER_PUSH_MODE": push_mode, "RCLONE_JUPYTER_RECONCILE_INTERVAL": "1"}
    daemon = daemons(env)
    daemon.data.mkdir()  # exists and is empty, as in a new container
    daemon.start()
    time.sleep(2.5)  # let a couple of periodic reconciles run
    assert bucket.files() == content
    assert synced_tree(daemon.data) == content
    assert daemon.stop() == 0
    assert bucket.files() == content


def test_sigterm_right_after_a_write_lands_the_write(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    # A long quiet period: without the shutdown flush, the write would still be waiting.
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": "30", "RCLONE_JUPYTER_MAX_DELAY": "60"}).start()
    payload = os.urandom(200_000)
    (daemon.data / "last-second.bin").write_bytes(payload)
    time.sleep(0.05)
    assert daemon.stop(signal.SIGTERM) == 0
    assert bucket.files() == {"last-second.bin": payload}
    assert "every change is saved" in daemon.log()


def test_sync_once_while_start_runs(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": "60", "RCLONE_JUPYTER_MAX_DELAY": "120"}).start()
    (daemon.data / "now.txt").write_text("save me now")
    (daemon.data / "dir").mkdir()
    (daemon.data / "dir/also.txt").write_text("me too")
    result = daemon.cli("sync", "--once")
    assert result.returncode == 0, result.stderr
    assert "Everything is saved" in result.stdout
    assert bucket.files() == {"now.txt": b"save me now", "dir/also.txt": b"me too"}
    # The daemon did the work (one rclone at a time on the bucket) and keeps running.
    assert daemon.proc.poll() is None
    assert daemon.stop() == 0


def test_sync_once_without_a_running_start(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env())
    daemon.data.mkdir()
    (daemon.data / "offline.txt").write_text("written while nothing ran")
    result = daemon.cli("sync", "--once")
    assert result.returncode == 0, result.stderr
    assert bucket.files() == {"offline.txt": b"written while nothing ran"}


def test_status_json(s3, daemons, tmp_path):
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": "60", "RCLONE_JUPYTER_MAX_DELAY": "120"}).start()
    # Kept open: a file still being written waits for the quiet period. A closed one is due 50 ms after its
    # close and saved in about 0.3 s, less than a `status --json` takes to start on a busy machine.
    with open(daemon.data / "waiting.txt", "w") as still_open:
        still_open.write("pending")
        still_open.flush()
        status = wait_until(lambda: (s := json.loads(daemon.cli("status", "--json").stdout))["pending"] == 1 and s,
                            message="one pending path")
    assert status["running"] is True
    assert status["last_error"] is None
    assert status["last_sync"] is not None  # the baseline counts
    assert status["pending_paths"] == ["waiting.txt"]
    waiting.close()
    daemon.cli("sync", "--once")
    status = wait_until(lambda: (s := json.loads(daemon.cli("status", "--json").stdout))["pending"] == 0 and s,
                        message="nothing pending after sync --once")
    assert set(status) >= {"last_sync", "pending", "last_error"}
    human = daemon.cli("status")
    assert human.returncode == 0 and "Pending changes: 0" in human.stdout
    assert daemon.stop() == 0
    stopped = daemon.cli("status", "--json")
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["running"] is False


def test_wrong_secret_is_a_clear_error(s3, daemons, tmp_path):
    needs(s3, "checks_signatures", "it accepts any secret, so a wrong one cannot be refused")
    wrong = "wrongSecret-0000-not-the-right-one"
    daemon = daemons({**s3.env(), "AWS_SECRET_ACCESS_KEY": wrong})
    daemon.start(wait=False)
    code = daemon.proc.wait(timeout=120)
    log = daemon.log()
    assert code != 0
    assert "credentials were refused" in log
    assert "Traceback" not in log
    assert wrong not in log
    assert not (daemon.data / "welcome.txt").exists()  # JupyterLab was never started


def test_missing_bucket_is_a_clear_error(s3, daemons):
    env = {**s3.env(), "AWS_S3_BUCKET_FOLDER": "no-such-bucket/folder"}
    daemon = daemons(env)
    daemon.start(wait=False)
    assert daemon.proc.wait(timeout=120) != 0
    assert "'no-such-bucket'" in daemon.log() and "does not exist" in daemon.log()


def test_missing_partner_variables_list_every_problem(daemons):
    daemon = daemons({"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "JUPYTERLAB_PORT": "99999",
                      "RCLONE_JUPYTER_QUIET_PERIOD": "soon"})
    result = daemon.cli("start", "--no-jupyter")
    assert result.returncode == 2
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_S3_BUCKET_FOLDER", "JUPYTERLAB_PORT", "RCLONE_JUPYTER_QUIET_PERIOD"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_no_cloud_variables_runs_without_persistence_loudly(daemons):
    daemon = daemons({}).start()
    (daemon.data / "x.txt").write_text("not kept")
    assert "WARNING: no bucket is configured" in daemon.log()
    assert "Persistence: OFF" in (daemon.data / "welcome.txt").read_text()
    assert daemon.stop() == 0


def test_secrets_never_in_logs_argv_or_readable_files(s3, daemons, tmp_path):
    password = "pw-Z9y8X7w6V5-unique"
    daemon = daemons({**s3.env(), "JUPYTERLAB_PW": password})
    daemon.start()
    secrets = [s3.secret, password]
    (daemon.data / "a.txt").write_text("a")
    seen_argv: list[str] = []
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # sample every process's command line while syncs run
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    seen_argv.append(open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"))
                except OSError:
                    pass
        (daemon.data / "a.txt").write_text(str(time.monotonic()))
        time.sleep(0.1)
    daemon.wait_synced()
    daemon.cli("sync", "--once")
    assert daemon.stop() == 0
    everything = "\n".join(seen_argv) + daemon.log() + daemon.cli("status", "--json").stdout
    for secret in secrets:
        assert secret not in everything
    assert any("rclone" in a for a in seen_argv)  # the sampling did see rclone runs
    config = daemon.state / "rclone.conf"
    assert s3.secret in config.read_text()  # the config is where the secret lives...
    assert config.stat().st_mode & 0o777 == 0o600  # ...readable by the owner only
    assert daemon.state.stat().st_mode & 0o777 == 0o700
    for path in daemon.data.rglob("*"):
        if path.is_file():
            assert all(s not in path.read_text(errors="replace") for s in secrets), path


def test_periodic_reconcile_lists_and_brings_in_only_changes_made_elsewhere(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("start.txt", b"there at start")
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_RECONCILE_INTERVAL": "0.5"}).start()

    def brought_in() -> int:
        return len(re.findall(r"from elsewhere brought here", daemon.log()))

    (daemon.data / "mine.txt").write_text("pushed by this container")
    settled(lambda: "mine.txt" in bucket.files(), message="our push")
    time.sleep(2)  # several periodic looks: the bucket changed only by our own push
    assert brought_in() == 0
    assert (daemon.data / "mine.txt").read_text() == "pushed by this container"

    bucket.put("theirs.txt", b"written by another machine")
    wait_until(lambda: (daemon.data / "theirs.txt").exists(), timeout=20, message="the outside change pulled in")
    assert (daemon.data / "theirs.txt").read_bytes() == b"written by another machine"
    wait_until(lambda: brought_in() >= 1, message="the reconcile's log line")  # logged once the run has finished
    time.sleep(1.5)  # and it is brought in once, not on every look
    assert brought_in() == 1
    assert "bisync" not in daemon.log()
    assert daemon.stop() == 0
    assert bucket.files() == {"start.txt": b"there at start", "mine.txt": b"pushed by this container",
                              "theirs.txt": b"written by another machine"}
