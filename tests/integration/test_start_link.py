"""The start on a real link: JupyterLab before the last byte of the large files, and safe while they arrive.

Every test runs on both S3 servers behind tests/throttle.py's link (one token bucket per direction shared by
all connections). The small files of a start are restored first, JupyterLab starts, then the large ones
(over RCLONE_JUPYTER_LARGE_FILE) arrive, smallest first, each under its name only when whole.
Orderings are asserted, never speeds (bench/realstart.py measures those).

The daemons here take files over 1 MiB as large (an eighth of the default), with files and download rates an
eighth of the issue's: the same seconds on the link, an eighth of the bytes for the proxy and the servers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import RCLONE, Bucket, clean_env, settled, synced_tree, tree, wait_until
from throttle import MiB, ThrottledLink

from rclone_jupyter.config.settings import LARGE_FILE as DEFAULT_LARGE_FILE
from rclone_jupyter.rclone.commands import LATER_TRANSFERS

SCALE = 8  # sizes and download rates are the divided by this
LARGE_FILE = DEFAULT_LARGE_FILE // SCALE
BIG = LARGE_FILE + 4 * MiB // SCALE  # just over the threshold: the smallest large file the start defers


@pytest.fixture
def link(s3):
    """The S3 server behind a home link: 2 MiB/s up, 8 MiB/s down (scaled), shared by every connection."""
    with ThrottledLink(int(s3.endpoint.rsplit(":", 1)[1]),
                       up=2 * MiB, down=8 * MiB // SCALE) as throttled:
        yield throttled


def seed(s3, tmp_path: Path, files: dict[str, bytes], folder: str = "team/alice") -> dict[str, bytes]:
    """Put these files into the bucket folder straight to the server (not through the link), in one copy."""
    src = tmp_path / f"seed-{time.monotonic_ns()}"
    for rel, content in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(content)
    bucket = Bucket(tmp_path, s3.env(folder))
    bucket._run("copy", str(src), bucket.remote.path(), "--transfers", "16", "--checkers", "16")
    return files


def small_and_large(small: int, large: int, large_size: int = BIG, step: int = MiB // SCALE) -> dict[str, bytes]:
    files = {f"code/m{i:03d}.py": f"# module {i}\n".encode() * 40 for i in range(small)}
    files["notebook.ipynb"] = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
    for i in range(large):
        # Sizes differ so "smallest first" has an order to keep.
        files[f"models/w{i}.bin"] = os.urandom(large_size + i * step)
    return files


def linked_env(s3, link: ThrottledLink, **extra) -> dict[str, str]:
    return {**s3.env(), "AWS_ENDPOINT_URL": link.url, "RCLONE_JUPYTER_LARGE_FILE": str(LARGE_FILE), **extra}


def jupyter_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class Watch(threading.Thread):
    """Looks at the large files' names every 20 ms: each must be absent or whole, never partial."""

    def __init__(self, data: Path, sizes: dict[str, int]):
        super().__init__(daemon=True)
        self.data, self.sizes = data, sizes
        self.partial: list[tuple[str, int]] = []
        self.arrived: dict[str, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        # One last look after `done`: the file that ended the restore may have arrived after the previous look.
        while True:
            finished = self.done.is_set()
            self.look()
            if finished:
                return
            time.sleep(0.02)

    def look(self) -> None:
        for rel, size in self.sizes.items():
            try:
                now = os.lstat(self.data / rel).st_size
            except FileNotFoundError:
                continue
            if now != size:
                self.partial.append((rel, now))
            self.arrived.setdefault(rel, time.monotonic())


def test_jupyterlab_answers_with_every_small_file_before_the_large_files_arrive_whole(s3, link, daemons, tmp_path):
    files = seed(s3, tmp_path, small_and_large(300, 4, large_size=32 * MiB // SCALE))  # the folder
    large = {rel: len(c) for rel, c in files.items() if len(c) > LARGE_FILE}
    daemon = daemons(linked_env(s3, link), jupyter=True)
    watch = Watch(daemon.data, large)
    watch.start()
    started = time.monotonic()
    daemon.start(wait=False)
    wait_until(lambda: jupyter_answers(daemon.port) or daemon.proc.poll() is not None, 120,
               message="JupyterLab answers")
    answered = time.monotonic()
    here = tree(daemon.data)
    status = daemon.status()
    # Every small file is there when JupyterLab answers, and at least one large one is still to come.
    assert {rel: c for rel, c in files.items() if rel not in large} == {rel: here.get(rel) for rel in files
                                                                         if rel not in large}
    assert status["restore"]["state"] == "running", status["restore"]
    assert set(large) - set(watch.arrived), "every large file was there before JupyterLab answered"
    assert status["restore"]["to_come_count"] >= 1 and status["restore"]["bytes_done"] < status["restore"]["bytes_total"]
    # Healthy (ready) while they arrive, and it says how far they are.
    health = daemon.cli("health")
    assert health.returncode == 0, health.stderr
    assert "restoring" in health.stdout or (daemon.status()["restore"] or {}).get("state") == "done", health.stdout
    assert "Large files still arriving: 4 file(s)" in (daemon.data / "welcome.txt").read_text()
    shown = daemon.cli("status").stdout
    assert ("Restoring" in shown and "to come: models/" in shown
            or (daemon.status()["restore"] or {}).get("state") == "done"), shown
    wait_until(lambda: (daemon.status()["restore"] or {}).get("state") == "done", 180, interval=0.2,
               message="the restore done")
    watch.done.set()
    watch.join()
    assert not watch.partial, f"a large file showed under its name before it was whole: {watch.partial[:3]}"
    assert synced_tree(daemon.data) == files
    # Smallest first: the downloads start in the order of the sizes, LATER_TRANSFERS at a time, so the file of
    # size rank r starts once r - LATER_TRANSFERS have arrived and arrives no earlier than the next place (two
    # files of nearly one size, started together, may arrive either way round on a loaded machine).
    order = sorted(large, key=lambda rel: watch.arrived[rel])
    by_size = sorted(large, key=lambda rel: large[rel])
    assert all(order.index(rel) >= rank - (LATER_TRANSFERS - 1) for rank, rel in enumerate(by_size)), (order, large)
    assert answered - started < max(watch.arrived.values()) - started


# -- safety while the large files arrive ----------------------------------------------------------------------
# A slower link (2 MiB/s down, scaled) and two files just over the threshold: about 6 s before the first
# arrives, 13 s before the last, long enough for the user to act while they are on their way.


@pytest.fixture
def slow_link(s3):
    with ThrottledLink(int(s3.endpoint.rsplit(":", 1)[1]), up=2 * MiB, down=2 * MiB // SCALE) as throttled:
        yield throttled


def two_large(tmp_path, s3) -> tuple[dict[str, bytes], dict[str, int]]:
    files = seed(s3, tmp_path, {**small_and_large(20, 2), "models/readme.txt": b"weights, see w0 and w1\n"})
    return files, {rel: len(c) for rel, c in files.items() if len(c) > LARGE_FILE}


def running_with_large_to_come(daemons, s3, link, large: dict[str, int], **env):
    daemon = daemons(linked_env(s3, link, **env)).start()
    arrived = [rel for rel in large if os.path.lexists(daemon.data / rel)]
    assert not arrived, f"already there at the start: {arrived}"
    assert daemon.status()["restore"]["to_come_count"] == len(large)
    return daemon


def wait_restored(daemon, timeout: float = 120) -> None:
    wait_until(lambda: (daemon.status()["restore"] or {}).get("state") == "done", timeout, interval=0.2,
               message="the restore done")


def fresh_container(daemons, s3, name: str = "fresh"):
    """A new container on the same bucket folder, straight to the server (no link: only the bytes matter)."""
    daemon = daemons(s3.env(), name=name).start()
    wait_restored(daemon)
    return daemon


def test_a_file_written_before_its_bucket_version_arrived_keeps_both_versions(s3, slow_link, daemons, tmp_path):
    files, large = two_large(tmp_path, s3)
    daemon = running_with_large_to_come(daemons, s3, slow_link, large)
    mine = b"written here while the bucket's w1 was on its way\n"
    (daemon.data / "models/w1.bin").write_bytes(mine)
    slow_link.unthrottle()  # the rest of the restore need not take the slow link's time
    wait_restored(daemon)
    daemon.wait_synced(60)
    here = synced_tree(daemon.data)
    assert here["models/w1.bin"] == mine  # the user's version was never overwritten
    assert here["models/w1.conflict1.bin"] == files["models/w1.bin"]  # the bucket's is kept beside it
    assert daemon.stop() == 0
    expected = {**files, "models/w1.bin": mine, "models/w1.conflict1.bin": files["models/w1.bin"]}
    assert Bucket(tmp_path, s3.env()).files() == expected
    assert synced_tree(fresh_container(daemons, s3).data) == expected


def test_deleting_a_folder_deletes_nothing_this_container_never_restored(s3, slow_link, daemons, tmp_path):
    files, large = two_large(tmp_path, s3)
    daemon = running_with_large_to_come(daemons, s3, slow_link, large)
    import shutil

    assert not [rel for rel in large if os.path.lexists(daemon.data / rel)]
    shutil.rmtree(daemon.data / "models")  # readme.txt was restored: its delete is the user's
    settled(lambda: "models/readme.txt" not in Bucket(tmp_path, s3.env()).files(), 30,
            message="the restored file deleted in the bucket")
    slow_link.unthrottle()
    wait_restored(daemon)
    daemon.wait_synced(60)
    assert daemon.stop() == 0
    expected = {rel: c for rel, c in files.items() if rel != "models/readme.txt"}
    assert Bucket(tmp_path, s3.env()).files() == expected  # the large files were never seen here: kept
    assert synced_tree(fresh_container(daemons, s3).data) == expected


def test_a_reconcile_leaves_the_files_still_to_come_alone(s3, slow_link, daemons, tmp_path):
    files, large = two_large(tmp_path, s3)
    daemon = running_with_large_to_come(daemons, s3, slow_link, large)
    (daemon.data / "notes.txt").write_text("saved while the models arrive\n")
    synced = daemon.cli("sync", "--once")  # pushes, then one LIST-only reconcile
    assert synced.returncode == 0, synced.stderr
    slow_link.unthrottle()
    wait_restored(daemon)
    daemon.wait_synced(60)
    # Each large file crossed the link once: the reconcile did not fetch what the background restore brings.
    assert slow_link.bytes_down < sum(large.values()) * 1.3, (slow_link.bytes_down, sum(large.values()))
    assert daemon.stop() == 0
    expected = {**files, "notes.txt": b"saved while the models arrive\n"}
    assert Bucket(tmp_path, s3.env()).files() == expected
    assert synced_tree(daemon.data) == expected


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stop_during_the_background_restore_loses_nothing_and_deletes_nothing(s3, slow_link, daemons, tmp_path,
                                                                                 sig):
    files, large = two_large(tmp_path, s3)
    daemon = running_with_large_to_come(daemons, s3, slow_link, large)
    (daemon.data / "notes.txt").write_text("my work\n")
    (daemon.data / "code/m000.py").unlink()  # a delete the user made: it must reach the bucket
    bucket = Bucket(tmp_path, s3.env())
    settled(lambda: (lambda names: "notes.txt" in names and "code/m000.py" not in names)(bucket.names()), 30,
            message="the user's changes in the bucket")
    assert any(not os.path.lexists(daemon.data / rel) for rel in large), "too late: everything had arrived"
    code = daemon.stop(sig, timeout=60)
    if sig == signal.SIGTERM:
        assert code == 0, daemon.log()  # everything the user did is saved; the large files wait in the bucket
        assert any(not os.path.lexists(daemon.data / rel) for rel in large), "the stop waited for the large files"
    expected = {**{k: v for k, v in files.items() if k != "code/m000.py"}, "notes.txt": b"my work\n"}
    assert Bucket(tmp_path, s3.env()).files() == expected
    fresh = fresh_container(daemons, s3)
    assert synced_tree(fresh.data) == expected


def test_the_disk_check_counts_the_large_files_still_to_come(s3, daemons, small_disk, tmp_path):
    # The small files fit on the 24 MiB disk, the whole folder does not: the start stops before the restore.
    # (The default threshold: this daemon needs no link.)
    files = seed(s3, tmp_path, small_and_large(20, 2, large_size=DEFAULT_LARGE_FILE + 4 * MiB, step=MiB))
    assert sum(len(c) for c in files.values() if len(c) <= DEFAULT_LARGE_FILE) < 1 * MiB
    disk = small_disk("data", "24m")
    daemon = daemons(s3.env())
    daemon.data = disk
    daemon.env["RCLONE_JUPYTER_DATA_DIR"] = str(disk)
    daemon.start(wait=False)
    assert daemon.proc.wait(timeout=60) == 3, daemon.log()
    assert "disk" in daemon.log()
    assert tree(disk) == {}
    assert Bucket(tmp_path, s3.env()).files() == files


# -- rclone-jupyter wait ------------------------------------------------------------------------------------


def test_wait_returns_when_the_path_has_arrived_whole(s3, slow_link, daemons, tmp_path):
    files, large = two_large(tmp_path, s3)
    daemon = running_with_large_to_come(daemons, s3, slow_link, large)
    first = min(large, key=large.get)
    result = daemon.cli("wait", str(daemon.data / first), timeout=120)
    assert result.returncode == 0, result.stderr
    assert (daemon.data / first).read_bytes() == files[first]
    everything = daemon.cli("wait", timeout=120)
    assert everything.returncode == 0, everything.stderr
    assert synced_tree(daemon.data) == files
    outside = daemon.cli("wait", "/etc/passwd")
    assert outside.returncode == 2 and "not in the data folder" in outside.stderr
    assert daemon.stop() == 0
    stopped = daemon.cli("wait", "--timeout", "5")
    assert stopped.returncode == 1 and "not running" in stopped.stderr


def test_health_startup_passes_while_the_small_files_are_restored_and_health_waits_for_jupyterlab(s3, daemons,
                                                                                                  tmp_path):
    # One 7.5 MiB file (under the threshold: restored before JupyterLab) at 1 MiB/s (scaled): a 7 s restore phase.
    seed(s3, tmp_path, {"data/frames.parquet": os.urandom(LARGE_FILE - MiB // 2 // SCALE)})
    with ThrottledLink(int(s3.endpoint.rsplit(":", 1)[1]), up=2 * MiB, down=MiB // SCALE) as slow:
        daemon = daemons(linked_env(s3, slow)).start(wait=False)
        wait_until(lambda: (daemon.status() or {}).get("phase") == "restoring", 30, message="phase restoring")
        startup = daemon.cli("health", "--startup")
        ready = daemon.cli("health")
        assert (daemon.status() or {}).get("phase") == "restoring", "the restore was over too soon to look"
        assert startup.returncode == 0, startup.stderr
        assert ready.returncode == 1 and "not ready: restoring" in ready.stderr
        daemon.wait_running()
        assert daemon.stop() == 0
    failed = daemon.cli("health", "--startup")
    assert failed.returncode == 1 and "not running" in failed.stderr
