"""The restored folder is the folder that was left (docs/design.md, invariant 9), through a real `start`,
real rclone and a real S3 server: contents, modification times, permission bits, links, empty folders; and
objects the data folder cannot hold are skipped with a WARNING, never blocking the start.
"""

from __future__ import annotations

import os
import stat
import time

from conftest import Bucket, settled, wait_until


def snapshot(root) -> dict[str, tuple]:
    """{path: (kind, content or target, mode, mtime in ms)} of everything under root, links not followed."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel == "welcome.txt":
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full), None, None)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", None, None, None)
            else:
                out[rel] = ("file", open(full, "rb").read(), stat.S_IMODE(st.st_mode), st.st_mtime_ns // 1_000_000)
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return out


def differences(left: dict, right: dict) -> list[str]:
    out = [f"only before: {k}" for k in sorted(left.keys() - right.keys())]
    out += [f"only after: {k}" for k in sorted(right.keys() - left.keys())]
    out += [f"{k}: {left[k]} != {right[k]}" for k in sorted(left.keys() & right.keys()) if left[k] != right[k]]
    return out


def test_modes_links_and_empty_folders_survive_a_fresh_container(s3, daemons, tmp_path):
    daemon = daemons(s3.env()).start()
    data = daemon.data
    (data / "run.sh").write_text("#!/bin/sh\necho ok\n")
    os.chmod(data / "run.sh", 0o755)
    (data / "private.key").write_text("k")
    os.chmod(data / "private.key", 0o600)
    (data / "was-exec.sh").write_text("#!/bin/sh\n")
    os.chmod(data / "was-exec.sh", 0o755)
    (data / "bin").mkdir()
    os.symlink("../run.sh", data / "bin/run")
    os.symlink("/usr/bin/python3", data / "python")  # a link out of the data folder: its target text only
    (data / "empty").mkdir()  # New Folder in JupyterLab
    (data / "emptied").mkdir()
    (data / "emptied/x.txt").write_text("x")
    (data / "gone").mkdir()
    (data / "gone/inner").mkdir()
    daemon.wait_synced()
    time.sleep(0.5)
    os.chmod(data / "was-exec.sh", 0o644)  # a chmod alone is a change to save
    (data / "emptied/x.txt").unlink()  # a folder emptied by deleting its files
    for folder in ("gone/inner", "gone"):  # a deleted empty folder
        (data / folder).rmdir()
    daemon.wait_synced()
    assert daemon.cli("sync", "--once").returncode == 0
    before = snapshot(data)
    assert daemon.stop() == 0

    fresh = daemons(s3.env(), name="fresh").start()
    after = snapshot(fresh.data)
    assert not differences(before, after), differences(before, after)
    assert os.access(fresh.data / "run.sh", os.X_OK) and not os.access(fresh.data / "was-exec.sh", os.X_OK)
    assert fresh.stop() == 0


def test_a_chmod_alone_costs_one_request_and_no_upload(s3, daemons, tmp_path):
    daemon = daemons(s3.env()).start()
    (daemon.data / "tool.sh").write_text("#!/bin/sh\n")
    daemon.wait_synced()
    settled(lambda: "tool.sh" in Bucket(tmp_path, s3.env()).files(), message="the upload")
    os.chmod(daemon.data / "tool.sh", 0o755)
    wait_until(lambda: "1 unchanged" in daemon.log(), message="the chmod's sync")
    assert "0 uploaded" in daemon.log().splitlines()[-1] or "0 uploaded" in daemon.log()
    assert daemon.stop() == 0
    fresh = daemons(s3.env(), name="fresh").start()
    assert os.access(fresh.data / "tool.sh", os.X_OK)
    assert fresh.stop() == 0


def test_what_is_not_kept_is_as_documented(s3, daemons, tmp_path):
    """README, 'Not kept': owners, hard links, sockets and FIFOs, extended attributes."""
    import socket

    daemon = daemons(s3.env()).start()
    data = daemon.data
    (data / "a.txt").write_text("shared content")
    os.link(data / "a.txt", data / "b.txt")  # a hard link: two names, one file
    os.mkfifo(data / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(data / "sock"))
    (data / "owned.txt").write_text("owned by someone else")
    os.chown(data / "owned.txt", 4321, 4321)
    try:
        os.setxattr(data / "a.txt", "user.note", b"kept?")
        has_xattr = True
    except OSError:  # the file system may not have user xattrs
        has_xattr = False
    daemon.wait_synced()
    assert daemon.cli("sync", "--once").returncode == 0
    assert daemon.stop() == 0
    sock.close()
    assert " ERROR " not in daemon.log()  # a FIFO or a socket is not an error, just not synced

    fresh = daemons(s3.env(), name="fresh").start()
    names = sorted(os.listdir(fresh.data))
    assert names == ["a.txt", "b.txt", "owned.txt", "welcome.txt"]
    a, b = os.stat(fresh.data / "a.txt"), os.stat(fresh.data / "b.txt")
    assert a.st_ino != b.st_ino and (fresh.data / "b.txt").read_text() == "shared content"
    assert os.stat(fresh.data / "owned.txt").st_uid == os.getuid()
    if has_xattr:
        assert "user.note" not in os.listxattr(fresh.data / "a.txt")
    assert fresh.stop() == 0


def test_objects_the_data_folder_cannot_hold_are_skipped_never_written_elsewhere(tmp_path, daemons):
    """A `..` name, a part over 255 bytes, an object below a link object: a WARNING, `status` lists them, the
    start goes on, nothing is written outside the data folder, and the objects stay in the bucket.

    On moto: `rclone serve s3` keeps objects as files and cannot hold such names at all.
    """
    import boto3

    from conftest import MotoS3

    server = MotoS3(tmp_path / "moto").start()
    try:
        env = server.env()
        folder = env["AWS_S3_BUCKET_FOLDER"].split("/", 1)[1]
        client = boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id="x",
                              aws_secret_access_key="y", region_name="us-east-1")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        bad = [f"{folder}/a/../../escaped.txt", f"{folder}/{'x' * 300}.txt", f"{folder}/lnk/pwned.txt"]
        for key in bad + [f"{folder}/ok.txt"]:
            client.put_object(Bucket=server.bucket, Key=key, Body=b"payload")
        client.put_object(Bucket=server.bucket, Key=f"{folder}/lnk.rclonelink", Body=str(elsewhere).encode())

        daemon = daemons(env).start()  # the start is not blocked
        assert (daemon.data / "ok.txt").read_bytes() == b"payload"
        assert os.readlink(daemon.data / "lnk") == str(elsewhere)
        assert os.listdir(elsewhere) == []  # nothing written through the link
        assert not (daemon.data.parent / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
        log = daemon.log()
        assert log.count("not restoring 3 object(s)") == 1 and log.count("not restoring") == 1, log  # one summary
        skipped = daemon.status()["remotes"]["s3"]["skipped"]
        assert len(skipped) == 3 and any("pwned" in name for name in skipped)
        assert daemon.cli("status").stdout.count("skipped (not restored)") == 3
        assert daemon.cli("sync", "--once").returncode == 0  # a reconcile skips them too
        assert os.listdir(elsewhere) == []
        assert daemon.stop() == 0
        keys = {o["Key"] for o in client.list_objects_v2(Bucket=server.bucket)["Contents"]}
        assert set(bad) <= keys  # never deleted either
    finally:
        server.stop()


def test_a_file_replaced_by_a_link_and_back(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    data = daemon.data
    (data / "target.txt").write_text("the target")
    (data / "name").write_text("a file first")
    settled(lambda: bucket.files().get("name") == b"a file first", message="the file")
    (data / "name").unlink()
    os.symlink("target.txt", data / "name")  # now a link: its object replaces the file's
    settled(lambda: "name" not in bucket.files() and bucket.files().get("name.rclonelink") == b"target.txt",
               message="the link object instead of the file")
    (data / "name").unlink()
    (data / "name").write_text("a file again")
    settled(lambda: "name.rclonelink" not in bucket.files() and bucket.files().get("name") == b"a file again",
               message="the file again, the link object gone")
    assert daemon.stop() == 0
    fresh = daemons(s3.env(), name="fresh").start()
    assert not (fresh.data / "name").is_symlink() and (fresh.data / "name").read_text() == "a file again"
    assert fresh.stop() == 0


def test_bisync_mode_keeps_links_as_links(s3, daemons, tmp_path):
    """RCLONE_JUPYTER_PUSH_MODE=bisync: a link restored from its .rclonelink object stays a link (not a stray
    `name.rclonelink` file), and a new link is uploaded as one."""
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("target.txt", b"t")
    bucket.put("old.rclonelink", b"target.txt")
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_PUSH_MODE": "bisync"}).start()
    assert os.readlink(daemon.data / "old") == "target.txt"
    os.symlink("target.txt", daemon.data / "new")
    settled(lambda: bucket.files().get("new.rclonelink") == b"target.txt", message="the new link's object")
    assert sorted(os.listdir(daemon.data)) == ["new", "old", "target.txt", "welcome.txt"]
    assert bucket.files() == {"target.txt": b"t", "old.rclonelink": b"target.txt", "new.rclonelink": b"target.txt"}
    assert daemon.stop() == 0
