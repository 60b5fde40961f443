"""Bucket contents the data folder cannot hold never stop a start: each object is skipped (one summary WARNING
with a count and the first names, the full list in the state folder, the first 50 in `status`), the rest is
restored, and nothing is written outside the data folder or deleted in the bucket.

The hostile bucket is made through the S3 API (boto3), on both S3 servers (`x` beside `x/y.txt` only on
moto: `rclone serve s3` keeps objects as files, where a name cannot be a file and a folder at once).
"""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Bucket, wait_until
from hostile_fixtures import S3Api, warnings


def remote_status(daemon) -> dict:
    return next(iter((daemon.status() or {})["remotes"].values()))


def test_objects_that_cannot_be_files_or_links_here_are_skipped_and_the_start_goes_on(s3, daemons):
    api = S3Api(s3)
    hostile = {
        "empty-link.rclonelink": b"",  # a link with no target
        "long-link.rclonelink": b"t" * 5000,  # longer than a link target can be
    }
    if s3.kind == "moto":
        hostile["clash"] = b"a file named like the folder beside it"  # beside clash/inside.txt
        api.put("clash/inside.txt", b"inside")
        hostile["marked/"] = b"a folder marker with content"  # skipped alone: the folder below it is restored
        api.put("marked/inside.txt", b"in a marked folder")
    for name, body in hostile.items():
        api.put(name, body)
    api.put("ok.txt", b"fine")
    before = api.names()

    daemon = daemons(s3.env()).start()
    assert (daemon.data / "ok.txt").read_bytes() == b"fine"
    if s3.kind == "moto":
        assert (daemon.data / "clash" / "inside.txt").read_bytes() == b"inside"  # the folder wins
        assert (daemon.data / "marked" / "inside.txt").read_bytes() == b"in a marked folder"  # at the start
    assert not any(os.path.lexists(daemon.data / name.removesuffix(".rclonelink")) for name in hostile
                   if name not in ("clash", "marked/"))
    found = warnings(daemon.log(), "cannot hold")
    assert len(found) == 1 and f"not restoring {len(hostile)} object(s)" in found[0], found
    status = remote_status(daemon)
    assert set(status["skipped"]) == set(hostile) and status["skipped_count"] == len(hostile)

    (daemon.data / "new.txt").write_text("saved")  # the sync works around them
    wait_until(lambda: "new.txt" in api.names(), message="a new file saved")
    assert daemon.cli("sync", "--once").returncode == 0  # a reconcile skips them too
    assert api.names() >= before  # nothing deleted in the bucket
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_thousands_of_objects_that_cannot_be_restored_never_overflow_rclones_argv(s3, daemons, tmp_path):
    """About 2.6 MB of names below a link object (as a 40,000-file folder moved out and replaced by a link
    leaves them): one --exclude per name on argv was 'Argument list too long' at every start."""
    api = S3Api(s3)
    api.put("moved.rclonelink", b"/elsewhere")
    part = "p" * 240
    names = [f"moved/{part}/{part}/{part}/{n:05d}-{part}.txt" for n in range(2600)]
    seed = tmp_path / "seed"
    (seed / "moved" / part / part / part).mkdir(parents=True)
    for name in names:
        (seed / name).write_bytes(b"x")
    Bucket(tmp_path, s3.env()).put_tree(seed)  # one rclone, not 2,600 boto3 calls
    api.put("kept.txt", b"kept")
    assert sum(len(name) for name in names) > 2_500_000
    assert len(api.names()) == 2602

    daemon = daemons(s3.env()).start(wait=False)
    daemon.wait_running(timeout=180)
    assert (daemon.data / "kept.txt").read_bytes() == b"kept"
    assert (daemon.data / "moved").is_symlink()
    found = warnings(daemon.log(), "cannot hold")
    assert len(found) == 1 and "not restoring 2600 object(s)" in found[0]
    status = remote_status(daemon)
    assert status["skipped_count"] == 2600 and len(status["skipped"]) == 50
    listed = Path(status["skipped_file"]).read_text().splitlines()
    assert len(listed) == 2600 and listed[0].startswith("moved/")
    assert "2600 objects skipped" in daemon.cli("status").stdout
    assert daemon.stop() == 0


def test_the_disk_check_does_not_count_objects_that_will_be_skipped(s3, daemons, small_disk):
    """30 MiB below a link object never come here: a 24 MiB data folder disk is enough."""
    api = S3Api(s3)
    api.put("moved.rclonelink", b"/elsewhere")
    api.put("moved/big.bin", b"\0" * (30 * 1024 * 1024))
    api.put("notes.txt", b"small")
    disk = small_disk("disk")
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_DATA_DIR": str(disk / "data")}).start()
    assert (disk / "data" / "notes.txt").read_bytes() == b"small"
    assert remote_status(daemon)["skipped_count"] == 1
    assert daemon.stop() == 0
