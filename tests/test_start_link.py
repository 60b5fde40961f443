"""The start on a real link: JupyterLab before the last byte of the large files, and safe while they arrive.

Every test runs on both S3 servers behind tests/throttle.py's link (one token bucket per direction shared by
all connections). The small files of a start are restored first, JupyterLab starts, then the large ones
(over engine/background.py's LARGE_FILE) arrive, smallest first, each under its name only when whole.
Orderings are asserted, never speeds (bench/realstart.py measures those).
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

from conftest import RCLONE, Bucket, clean_env, synced_tree, tree, wait_until
from throttle import MiB, ThrottledLink

from rclone_jupyter.engine.background import LARGE_FILE

BIG = LARGE_FILE + 4 * MiB  # just over the threshold: the smallest large file the start defers


@pytest.fixture
def link(s3):
    """The S3 server behind a home link: 2 MiB/s up, 8 MiB/s down, shared by every connection."""
    with ThrottledLink(int(s3.endpoint.rsplit(":", 1)[1]),
                       up=2 * MiB, down=8 * MiB) as throttled:
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


def small_and_large(small: int, large: int, large_size: int = BIG) -> dict[str, bytes]:
    files = {f"code/m{i:03d}.py": f"# module {i}\n".encode() * 40 for i in range(small)}
    files["notebook.ipynb"] = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
    for i in range(large):
        # Sizes differ so "smallest first" has an order to keep.
        files[f"models/w{i}.bin"] = os.urandom(large_size + i * MiB)
    return files


def linked_env(s3, link: ThrottledLink, **extra) -> dict[str, str]:
    return {**s3.env(), "AWS_ENDPOINT_URL": link.url, **extra}


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
        while not self.done.is_set():
            for rel, size in self.sizes.items():
                try:
                    now = os.lstat(self.data / rel).st_size
                except FileNotFoundError:
                    continue
                if now != size:
                    self.partial.append((rel, now))
                self.arrived.setdefault(rel, time.monotonic())
            time.sleep(0.02)


def test_jupyterlab_answers_with_every_small_file_before_the_large_files_arrive_whole(s3, link, daemons, tmp_path):
    files = seed(s3, tmp_path, small_and_large(300, 4, large_size=32 * MiB))
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
    wait_until(lambda: (daemon.status()["restore"] or {}).get("state") == "done", 180, interval=0.2,
               message="the restore done")
    watch.done.set()
    watch.join()
    assert not watch.partial, f"a large file showed under its name before it was whole: {watch.partial[:3]}"
    assert synced_tree(daemon.data) == files
    # Smallest first: the arrivals follow the sizes.
    order = sorted(large, key=lambda rel: watch.arrived[rel])
    assert order == sorted(large, key=lambda rel: large[rel]), (order, large)
    assert answered - started < max(watch.arrived.values()) - started
