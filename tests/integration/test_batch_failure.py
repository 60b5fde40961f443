"""One file of a batch fails: only what did not land is sent again (engine/transfers.py, Transfers.upload).

rclone goes on with the rest of a batch when one file fails, so after a failed call most of the batch is in the
bucket. Each file of the batch used to be sent again on its own, an rc call and a whole upload per file: a
batch of thousands was uploaded twice over a node's link, for one name the storage refuses or one broken
connection.

moto only: it refuses a key with a line break (a broken 404 to the PUT; AWS itself takes the name), which makes
that one file fail. `rclone serve s3` takes every name.
"""

from __future__ import annotations

import os

import pytest

from conftest import Bucket, wait_until

FILES = 40  # more than HEAD_LIMIT (engine/bucket.py): what landed in a new folder is one LIST


def test_a_batch_with_one_name_the_storage_refuses_sends_only_that_file_again(s3, daemons, tmp_path):
    if getattr(s3, "holds_line_breaks_in_names", True):
        pytest.skip(f"{s3.kind} takes every name: no file of the batch fails")
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_RETRY_INTERVAL": "5",
                      "RCLONE_JUPYTER_QUIET_PERIOD": "1"}).start()
    files = {f"batch/f{i:02d}.txt": f"file {i}".encode() for i in range(FILES)}
    s3.mark()
    os.makedirs(daemon.data / "batch")
    for rel, content in files.items():
        (daemon.data / rel).write_bytes(content)
    (daemon.data / "batch" / "line\nbreak.txt").write_bytes(b"refused")
    status = wait_until(lambda: (s := daemon.status() or {}).get("last_error") and s, timeout=30,
                        message="the refused file in the status")
    assert status["pending_paths"] == ["batch/line\nbreak.txt"]
    assert bucket.files() == files  # nothing else was held back
    counts = s3.counts()
    # The batch's PUTs, then what landed asked once (a LIST, and a HEAD per object for its modification time, all
    # in one call), then the refused file alone: no file of the batch sent twice (before: every one, 82 PUTs).
    assert counts["PUT"] <= FILES + 3, counts
    assert counts["HEAD"] <= FILES + 4, counts
    (daemon.data / "batch" / "line\nbreak.txt").unlink()
    daemon.wait_synced(timeout=90)
    assert daemon.stop() == 0
