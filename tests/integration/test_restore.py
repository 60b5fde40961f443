"""Engine.restore against a real S3 server: what it learns from the copy alone (no listing before it).

What must hold: an empty (or missing) bucket folder sets remote_was_empty, a folder with anything in it does
not, a newer local file is never overwritten, and a missing bucket is the clear error.
"""

from __future__ import annotations

import logging
import os
import time

import pytest

from conftest import Bucket, make_engine
from rclone_jupyter.errors import PersistenceError


@pytest.fixture(autouse=True)
def rclone_runs_logged(caplog):
    caplog.set_level(logging.DEBUG, logger="rclone_jupyter.rclone.runner")


def argvs(caplog) -> list[str]:
    """The rclone commands run so far, as the runner logs each one ("running rclone lsf (...)")."""
    return [r.args[0] for r in caplog.records if r.name == "rclone_jupyter.rclone.runner"
            and r.msg.startswith("running rclone")]


@pytest.mark.parametrize("folder", ["restore/never-written", ""])  # a folder with no object; the bucket root
def test_empty_bucket_folder_sets_remote_was_empty(s3, tmp_path, folder):
    if not folder:  # the bucket root must be empty: use a bucket of its own
        s3.make_bucket("emptybucket")
        env = {**s3.env(), "AWS_S3_BUCKET_FOLDER": "emptybucket"}
    else:
        env = s3.env(folder)
    engine = make_engine(env, tmp_path)
    engine.restore()
    assert engine.remote_was_empty
    assert engine.data_dir.is_dir()


def test_only_noise_is_not_empty_and_files_are_not_either(s3, tmp_path):
    bucket = Bucket(tmp_path, s3.env("restore/noise"))
    bucket.put(".ipynb_checkpoints/nb-checkpoint.ipynb", b"{}")
    engine = make_engine(s3.env("restore/noise"), tmp_path / "a")
    engine.restore()
    # Nothing copied, but the folder holds something (as a heartbeat would): deleted examples stay deleted.
    assert not engine.remote_was_empty
    assert not os.listdir(engine.data_dir)
    bucket.put("nb.ipynb", b"{}")
    engine = make_engine(s3.env("restore/noise"), tmp_path / "b")
    engine.restore()
    assert not engine.remote_was_empty
    assert (engine.data_dir / "nb.ipynb").read_bytes() == b"{}"


def test_restore_keeps_a_newer_local_file_and_runs_a_listing_and_one_copy(s3, tmp_path, caplog):
    bucket = Bucket(tmp_path, s3.env("restore/newer"))
    bucket.put("a.txt", b"old in bucket", mtime=time.time() - 3600)
    bucket.put("b.txt", b"only in bucket")
    engine = make_engine(s3.env("restore/newer"), tmp_path)
    engine.data_dir.mkdir(parents=True)
    (engine.data_dir / "a.txt").write_bytes(b"newer here")
    engine.restore()
    assert (engine.data_dir / "a.txt").read_bytes() == b"newer here"
    assert (engine.data_dir / "b.txt").read_bytes() == b"only in bucket"
    assert not engine.remote_was_empty  # a.txt was compared, b.txt copied
    # The happy path: one LIST-only listing (the baseline's bucket side, the totals) and the copy.
    assert argvs(caplog) == ["lsf", "copy"]


def test_missing_bucket_is_the_clear_error(s3, tmp_path):
    engine = make_engine({**s3.env(), "AWS_S3_BUCKET_FOLDER": "no-such-bucket/x"}, tmp_path)
    with pytest.raises(PersistenceError, match="'no-such-bucket'.*does not exist"):
        engine.restore()
    with pytest.raises(PersistenceError, match="'no-such-bucket'.*does not exist"):
        engine.restore(merge=True)  # a second cloud: its listing for the merge is the first to fail
    assert not os.listdir(engine.data_dir)
