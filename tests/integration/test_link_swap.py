"""A folder replaced by a link to somewhere else (the user moved a big folder out of the data folder and left
a link in its place) is, as the user sees it, a delete of everything below it and a new link: its objects are
deleted (the versions known) and the link is saved; nothing outside the data folder is read, chmod'ed,
renamed or uploaded because of it. On both S3 servers; the bucket read through the S3 API."""

from __future__ import annotations

import json
import os
import shutil
import time

from conftest import wait_until
from hostile_fixtures import S3Api, mode
from throttle import ThrottledLink


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


def test_a_folder_swapped_for_a_link_while_its_save_is_pushed_never_uploads_the_private_config(s3, daemons,
                                                                                              tmp_path):
    """The race of the push: the folder of a file being saved becomes a link to the state directory after the
    push looked at the file and before rclone read it. A link with a 2 s round trip holds the push in its look at
    the bucket (one HEAD) while the folder is swapped; rclone must read the file the push opened, not the rclone
    config with its secret that the same path names now."""
    api = S3Api(s3)
    with ThrottledLink(int(s3.endpoint.rsplit(":", 1)[1])) as link:
        daemon = daemons({**s3.env(), "AWS_ENDPOINT_URL": link.url}).start()
        project = daemon.data / "project"
        project.mkdir()
        (project / "rclone.conf").write_text("my own settings, v1\n")
        wait_until(lambda: "project/rclone.conf" in api.names(), message="the first version saved")
        daemon.wait_synced()

        link.one_way = 1.0
        sent = link.bytes_up
        (project / "rclone.conf").write_text("my own settings, v2\n")  # closed: pushed at once
        wait_until(lambda: link.bytes_up > sent, timeout=20, interval=0.01, message="the push's look on its way")
        os.rename(project, tmp_path / "moved-away")
        os.symlink(daemon.state, project)  # project/rclone.conf names the private config now
        assert (project / "rclone.conf").read_text() != "my own settings, v2\n"
        time.sleep(2.5)  # the look's answer, then the upload
        link.one_way = 0.0
        wait_until(lambda: "project.rclonelink" in api.names() and "project/rclone.conf" not in api.names(),
                   timeout=30, message="the link saved, the folder's file deleted")
        daemon.wait_synced()
        leaked = [name for name in api.names() if s3.secret.encode() in api.get(name)]
        assert not leaked, f"the secret was uploaded as {leaked}"
        assert api.get("project.rclonelink") == str(daemon.state).encode()
        assert daemon.stop() == 0
