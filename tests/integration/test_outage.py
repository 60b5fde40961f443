"""A bucket that does not answer is an error, never an empty answer (rclone/rcd.py, RcDaemon.call).

rclone's rc answers a lookup of listed files (`operations/list` with `--files-from`) with 200 and leaves out
each file whose HEAD failed, as if it did not exist. Read so, an outage looked like "the object is gone": a
delete made during it was dropped (the object stayed in the bucket for good), and a push went on file by file
for minutes before the status said anything.
"""

from __future__ import annotations

import pytest

from conftest import Bucket, settled, synced_tree, wait_until


@pytest.mark.private_s3  # takes the server down
def test_a_delete_made_while_the_bucket_is_down_lands_once_it_is_back(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_RETRY_INTERVAL": "0.3"}).start()
    (daemon.data / "gone.txt").write_text("deleted during the outage")
    (daemon.data / "kept.txt").write_text("kept")
    settled(lambda: bucket.files() == {"gone.txt": b"deleted during the outage", "kept.txt": b"kept"},
               timeout=30, message="both files in the bucket")

    s3.down()
    (daemon.data / "gone.txt").unlink()
    status = wait_until(lambda: (s := daemon.status() or {}).get("last_error") and s, timeout=60,
                        message="the outage in the status")
    assert status["pending"] == 1  # the delete waits for the bucket; it was not taken as done

    s3.up()
    daemon.wait_synced(timeout=60)
    assert bucket.files() == synced_tree(daemon.data) == {"kept.txt": b"kept"}
    assert daemon.stop() == 0
