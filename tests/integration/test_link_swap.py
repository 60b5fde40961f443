"""A folder replaced by a link to somewhere else (the user moved a big folder out of the data folder and left
a link in its place) is, as the user sees it, a delete of everything below it and a new link: its objects are
deleted (the versions known) and the link is saved; nothing outside the data folder is read, chmod'ed,
renamed or uploaded because of it. On both S3 servers; the bucket read through the S3 API."""

from __future__ import annotations

import json
import os
import shutil

from conftest import wait_until
from hostile_fixtures import S3Api, mode


def test_a_folder_replaced_by_a_link_is_a_delete_of_everything_below_it(s3, daemons, tmp_path):
    api = S3Api(s3)
    daemon = daemons(s3.env()).start()
    project = daemon.data / "project"
    project.mkdir()
    (project / "notes.txt").write_text("mine")
    (project / "run.sh").write_text("#!/bin/sh\n")
    (project / "run.sh").chmod(0o755)
    wait_until(lambda: {"project/notes.txt", "project/run.sh"} <= api.names(), message="the folder saved")
    daemon.wait_synced()

    outside = tmp_path / "elsewhere"
    shutil.move(str(project), str(outside))  # out of the data folder, with its files
    (outside / "run.sh").chmod(0o644)  # changed there: must not come back as a mode change here
    os.symlink(outside, project)
    wait_until(lambda: "project.rclonelink" in api.names(), message="the link saved")
    wait_until(lambda: not {"project/notes.txt", "project/run.sh"} & api.names(), timeout=30,
               message="the folder's objects deleted")
    assert api.get("project.rclonelink") == str(outside).encode()
    daemon.wait_synced()

    # Changes made elsewhere to the old names are not carried out through the link.
    api.put(".rclone-jupyter/tree.json", json.dumps({"version": 1, "modes": {"project/run.sh": "4777"},
                                                     "folders": []}).encode())
    api.put("project/notes.txt", b"from another machine")
    assert daemon.cli("sync", "--once").returncode == 0
    assert mode(outside / "run.sh") == 0o644
    assert (outside / "notes.txt").read_text() == "mine"
    assert sorted(os.listdir(outside)) == ["notes.txt", "run.sh"]
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log()
