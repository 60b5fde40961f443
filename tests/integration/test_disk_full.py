"""A full disk while running (issue 13): the daemon keeps running, status says why saves fail, nothing in the
bucket is touched, saving resumes when space comes back. The data folder is a real 24 MiB tmpfs."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from conftest import Bucket, settled, wait_until
from rclone_jupyter.daemon.status import StatusBoard

MiB = 1024 * 1024


def fill(path) -> None:
    """Write `path` until the disk is full (the last write or the close fails with ENOSPC)."""
    with pytest.raises(OSError) as info:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * MiB)
                f.flush()
    assert info.value.errno == errno.ENOSPC


@pytest.mark.slow
def test_a_full_data_disk_while_running(s3, daemons, small_disk, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("keep.ipynb", b'{"cells": ["kept"]}')
    disk = small_disk("data", "24m")
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_RECONCILE_INTERVAL": "2"})
    daemon.data = disk
    daemon.env["RCLONE_JUPYTER_DATA_DIR"] = str(disk)
    daemon.start()
    assert (disk / "keep.ipynb").read_bytes() == b'{"cells": ["kept"]}'

    fill(disk / "big.bin")
    with pytest.raises(OSError) as info:  # the user's next save fails ...
        (disk / "notes.txt").write_bytes(b"x" * (2 * MiB))
    assert info.value.errno == errno.ENOSPC
    # ... and the status says why, while the daemon keeps running.
    status = wait_until(lambda: (daemon.status() or {}).get("disk", {}).get("full") and daemon.status(),
                        timeout=15, message="the status to report the full disk")
    assert "disk is full" in status["disk"]["message"]
    assert "Disk FULL" in daemon.cli("status").stdout
    assert daemon.proc.poll() is None

    # Space comes back: saving resumes without a restart.
    (disk / "big.bin").unlink()
    (disk / "notes.txt").unlink(missing_ok=True)  # the half-written file of the failed save
    # The daemon may be uploading big.bin (it grew past the large-file threshold): the disk gets its space back
    # when that upload, stopped by the delete, lets go of the file, a moment after the unlink, not at it.
    wait_until(lambda: shutil.disk_usage(disk).free > 4 * MiB, timeout=10,
               message="the deleted file's space to come back (its upload stopped)")
    (disk / "after.txt").write_text("written once there was space again")
    wait_until(lambda: not (daemon.status() or {}).get("disk", {}).get("full"), timeout=15,
               message="the status to clear the full disk")
    settled(lambda: bucket.files().get("after.txt") == b"written once there was space again", timeout=30,
               message="the new file in the bucket")
    daemon.wait_synced()
    assert daemon.proc.poll() is None
    assert bucket.files() == {"keep.ipynb": b'{"cells": ["kept"]}', "after.txt": b"written once there was space again"}
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_status_writes_survive_a_full_state_disk(small_disk):
    state = small_disk("state", "1m")
    board = StatusBoard(state / "status.json", {"s3": "s3://b/f"}, persistent=True)
    board.set(phase="running")
    filler = state / "filler"
    fill(filler)
    board.set(phase="still running")  # no exception: the write fails quietly and is retried on the next change
    board.remote("s3", pending={"a.txt"}, last_error="x")
    assert [p.name for p in state.iterdir() if p.name.startswith(".status.json")] == []  # no temp file left
    assert '"running"' in (state / "status.json").read_text()  # the last good status is intact
    os.unlink(filler)
    board.set(phase="after")
    assert '"after"' in (state / "status.json").read_text()


@pytest.mark.slow
def test_a_file_from_elsewhere_too_big_for_the_disk_waits_and_the_rest_still_arrives(s3, daemons, small_disk,
                                                                                   tmp_path):
    """Issue 18: one object bigger than the room on the disk made every reconcile fail, so nothing changed
    elsewhere arrived any more. It stays in the bucket (never deleted), the rest arrives, and it arrives at the
    first look after space came back."""
    from rclone_jupyter.engine.reconcile import ROOM_LEFT

    bucket = Bucket(tmp_path, s3.env())
    disk = small_disk("data", "24m")
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_DATA_DIR": str(disk)})
    daemon.data = disk
    daemon.start()
    # The user's own data fills the disk but for ROOM_LEFT and 4 MiB: a 6 MiB file from elsewhere cannot come.
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "mine.bin", "wb") as mine:
        mine.truncate(0)
        mine.write(b"\1" * (free - ROOM_LEFT - 4 * MiB))
    daemon.wait_synced(60)
    big, small = os.urandom(6 * MiB), b"a small change made elsewhere\n"
    bucket.put("model.bin", big)
    bucket.put("notes.txt", small)

    result = daemon.cli("sync", "--once")
    assert result.returncode == 0, result.stderr + daemon.log()[-3000:]
    assert (disk / "notes.txt").read_bytes() == small  # the rest arrived
    assert not (disk / "model.bin").exists()
    said = [line for line in daemon.log().splitlines() if "not downloading 1 file(s)" in line]
    assert len(said) == 1 and "model.bin" in said[0] and "WARNING" in said[0], daemon.log()[-3000:]
    again = daemon.cli("sync", "--once")  # still no room: said once, not at every look
    assert again.returncode == 0, again.stderr
    assert len([line for line in daemon.log().splitlines() if "not downloading" in line]) == 1
    assert bucket.files()["model.bin"] == big  # never deleted in the bucket

    (disk / "mine.bin").unlink()  # room again: the next look brings it
    daemon.wait_synced(60)
    result = daemon.cli("sync", "--once")
    assert result.returncode == 0, result.stderr
    assert (disk / "model.bin").read_bytes() == big
    assert daemon.stop() == 0
    assert {k: v for k, v in bucket.files().items() if k != "mine.bin"} == {"model.bin": big, "notes.txt": small}
