"""File names in the data folder that cannot become object names are skipped, listed as not saved, and never
hold back the rest: a name that is not valid UTF-8 (what `unzip` of an old archive makes).

On both S3 servers; the bucket is read through the S3 API.
"""

from __future__ import annotations

import os

from conftest import wait_until
from hostile_fixtures import S3Api, warnings

BAD = b"caf\xe9.txt"  # Latin-1 bytes: not UTF-8
BAD_SHOWN = "caf\\xe9.txt"  # how the log and the status show it


def make_bad(folder) -> None:
    with open(os.path.join(os.fsencode(folder), BAD), "wb") as f:
        f.write(b"menu")


def not_saved(daemon) -> dict:
    status = daemon.status() or {}
    return {name: why for remote in status.get("remotes", {}).values() for name, why in
            (remote.get("not_saved") or {}).items()}


def test_a_name_that_is_not_utf8_while_running_is_skipped_and_everything_else_is_saved(s3, daemons):
    api = S3Api(s3)
    daemon = daemons(s3.env()).start()
    make_bad(daemon.data)
    (daemon.data / "after.txt").write_text("saved")
    wait_until(lambda: "after.txt" in api.names(), message="the good file saved")
    wait_until(lambda: BAD_SHOWN in not_saved(daemon), message="the bad name listed as not saved")
    assert "UTF-8" in not_saved(daemon)[BAD_SHOWN]
    status = daemon.wait_synced()
    assert all(remote["state"] == "ok" for remote in status["remotes"].values())
    (daemon.data / "later.txt").write_text("saved too")  # nothing is stuck behind it
    wait_until(lambda: "later.txt" in api.names(), message="a later file saved")
    assert len(warnings(daemon.log(), BAD_SHOWN)) == 1
    assert {name for name in api.names() if not name.startswith(".rclone-jupyter/")} == {"after.txt", "later.txt"}

    os.unlink(os.path.join(os.fsencode(daemon.data), BAD))  # gone: no longer listed
    wait_until(lambda: not not_saved(daemon), message="the deleted name no longer listed")
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_a_name_that_is_not_utf8_already_there_at_start_does_not_stop_the_start(s3, daemons):
    api = S3Api(s3)
    api.put("notebook.ipynb", b'{"cells": []}')
    daemon = daemons(s3.env())
    daemon.data.mkdir(parents=True)
    make_bad(daemon.data)
    (daemon.data / "local.txt").write_text("was here before the start")
    daemon.start()
    wait_until(lambda: "local.txt" in api.names(), message="the other local file saved")
    assert (daemon.data / "notebook.ipynb").read_bytes() == b'{"cells": []}'
    assert BAD_SHOWN in not_saved(daemon)
    assert len(warnings(daemon.log(), BAD_SHOWN)) == 1
    assert BAD_SHOWN in daemon.cli("status").stdout
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()


def test_a_regular_file_named_like_a_link_object_is_listed_as_not_saved_never_as_saved(s3, daemons):
    """rclone --links reads and writes a local `x.rclonelink` as the link `x`: such a file cannot be saved."""
    api = S3Api(s3)
    daemon = daemons(s3.env()).start()
    (daemon.data / "notes.rclonelink").write_text("a file, not a link")
    (daemon.data / "beside.txt").write_text("saved")
    wait_until(lambda: "beside.txt" in api.names(), message="the file beside it saved")
    wait_until(lambda: "notes.rclonelink" in not_saved(daemon), message="listed as not saved")
    assert "rename it" in not_saved(daemon)["notes.rclonelink"]
    assert daemon.wait_synced()["pending"] == 0  # not stuck, not retried
    assert "notes.rclonelink" not in api.names()
    assert len(warnings(daemon.log(), "notes.rclonelink")) == 1

    os.rename(daemon.data / "notes.rclonelink", daemon.data / "notes.txt")  # renamed: saved at once
    wait_until(lambda: "notes.txt" in api.names(), message="the renamed file saved")
    wait_until(lambda: not not_saved(daemon), message="no longer listed")
    assert api.get("notes.txt") == b"a file, not a link"
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
