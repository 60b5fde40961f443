"""A burst of new names in a folder the bucket was never known to hold is checked with one LIST of that folder
instead of a HEAD per name (engine/bucket.py). That LIST must still find an object someone else put there
meanwhile, so it is kept as a conflict and not overwritten: with real rclone against both S3 servers."""

from __future__ import annotations

import time

from conftest import Bucket, make_engine
from rclone_jupyter.model.changes import Batch


def test_a_new_folder_s_listing_still_finds_an_object_put_there_meanwhile(s3, tmp_path):
    bucket = Bucket(tmp_path, s3.env("burst"))
    engine = make_engine(s3.env("burst"), tmp_path)
    try:
        engine.restore()
        engine.establish()
        bucket.put("repo/f3.txt", b"theirs", mtime=time.time() - 60)
        names = [f"repo/f{i}.txt" for i in range(12)]  # more than HEAD_LIMIT
        for rel in names:
            (engine.data_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (engine.data_dir / rel).write_text(f"mine {rel}")
        assert engine.push(Batch(frozenset(names))).conflicts == 1
        files = bucket.files()
        assert files["repo/f3.conflict1.txt"] == b"theirs" and files["repo/f3.txt"] == b"mine repo/f3.txt"
    finally:
        engine.rclone.close()
