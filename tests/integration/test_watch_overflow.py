"""A burst larger than the kernel's inotify queue (fs.inotify.max_queued_events) drops events: the kernel says
so with one overflow event, watchdog rebuilds its watches without telling anyone, and a file whose events were
dropped would never be saved. The watcher hears the overflow and the whole data folder is compared with the
bucket.

The overflow is made for real: the daemon is stopped (SIGSTOP) so that nobody reads its queue, more changes
than the queue holds are made, then one more file, whose events the kernel drops; then the daemon goes on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from conftest import Bucket, settled

QUEUE_LIMIT = Path("/proc/sys/fs/inotify/max_queued_events")


def test_a_file_whose_events_the_kernel_dropped_is_still_saved(s3, daemons, tmp_path):
    limit = int(QUEUE_LIMIT.read_text()) if QUEUE_LIMIT.exists() else None
    if limit is None or limit > 200_000:
        pytest.skip("no inotify queue limit small enough to overflow in a test")
    daemon = daemons(s3.env()).start()
    bucket = Bucket(tmp_path, s3.env())
    for name in ("a.txt", "b.txt"):
        (daemon.data / name).write_text("")
    daemon.wait_synced()
    os.kill(daemon.proc.pid, signal.SIGSTOP)
    try:
        # Writes that alternate between two files are never merged by the kernel: one queued event each.
        fds = [os.open(daemon.data / name, os.O_WRONLY | os.O_APPEND) for name in ("a.txt", "b.txt")]
        for n in range(limit // 2 + 1000):
            for fd in fds:
                os.write(fd, b"x")
        for fd in fds:
            os.close(fd)
        (daemon.data / "lost.txt").write_text("written after the queue overflowed")
    finally:
        os.kill(daemon.proc.pid, signal.SIGCONT)
    settled(lambda: bucket.files().get("lost.txt") == b"written after the queue overflowed", timeout=60,
            interval=1.0, message="the file whose events were dropped is in the bucket")
    files = bucket.files()
    assert files["a.txt"] == files["b.txt"] == b"x" * (limit // 2 + 1000)
    if "inotify event queue overflowed" not in daemon.log():
        # Seen once in a full parallel run: the queue did not overflow, so this run proved nothing about it.
        pytest.skip("the kernel's inotify queue did not overflow this time")
