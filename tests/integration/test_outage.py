"""A bucket that does not answer is an error, never an empty answer (rclone/rcd.py, RcDaemon.call).

rclone's rc answers a lookup of listed files (`operations/list` with `--files-from`) with 200 and leaves out
each file whose HEAD failed, as if it did not exist. Read so, an outage looked like "the object is gone": a
delete made during it was dropped (the object stayed in the bucket for good), and a push went on file by file
for minutes before the status said anything.
"""

from __future__ import annotations

import time

import pytest

from conftest import Bucket, make_engine, settled, synced_tree, wait_until
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.model.changes import Batch
from rclone_jupyter.rclone.retry import ONE_ATTEMPT


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


class _LandsThenGoesDown:
    """The engine's real store, whose first upload lands and then the server goes down before rclone hears
    back: the call fails, and the bucket cannot be asked what landed."""

    def __init__(self, store, server):
        self.store, self.server, self.failed = store, server, False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def upload(self, *args, **kwargs):
        self.store.upload(*args, **kwargs)
        if not self.failed:
            self.failed = True
            self.server.down()
            raise RcloneError("push failed: Failed to copy: connection refused", exit_code=None, retryable=True)


@pytest.mark.private_s3  # takes the server down
@pytest.mark.parametrize("known, delete_fails", [(False, False), (True, False), (False, True)],
                         ids=["new-file", "known-file-changed", "new-file-its-delete-fails-once"])
def test_an_upload_that_landed_as_the_bucket_went_down_is_deleted_by_a_delete_made_before_it_is_back(
        s3, tmp_path, known, delete_fails):
    """Unknown, the object stays in the bucket for good, and every fresh container restores a file the user
    deleted; a known one is brought back here as 'changed in the bucket since', though it is our own upload.
    A delete that fails (the bucket down again) is tried again with the next push."""
    bucket = Bucket(tmp_path, s3.env())
    if known:
        bucket.put("notes.txt", b"the version known at the start", mtime=time.time() - 3600)
    engine = make_engine(s3.env(), tmp_path)
    try:
        engine.restore()
        engine.establish()
        engine.store.retry = ONE_ATTEMPT  # as the daemon's syncer has it: it owns the retries
        failing = _LandsThenGoesDown(engine.store, s3)
        engine.pusher.transfers.store = failing
        (engine.data_dir / "notes.txt").write_bytes(b"written during the outage")
        with pytest.raises(RcloneError):
            engine.push(Batch(frozenset({"notes.txt"})))
        assert failing.failed
        (engine.data_dir / "notes.txt").unlink()
        s3.up()
        assert bucket.files() == {"notes.txt": b"written during the outage"}  # it had landed
        if delete_fails:
            keep_and_delete = engine.pusher.keeper.delete

            def refused(_modes):  # the move into the trash fails as it does when the bucket is down
                raise RcloneError("delete failed: connection refused", exit_code=None, retryable=True)

            engine.pusher.keeper.delete = refused
            with pytest.raises(RcloneError):
                engine.push(Batch(frozenset({"notes.txt"})))
            engine.pusher.keeper.delete = keep_and_delete
            assert bucket.files() == {"notes.txt": b"written during the outage"}  # not deleted yet
        engine.push(Batch(frozenset({"notes.txt"})))
        assert bucket.files() == {}
        assert not (engine.data_dir / "notes.txt").exists()  # not brought back: it was ours
    finally:
        engine.rclone.close()
