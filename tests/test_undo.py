"""Undo (issue 19): the versions the sync replaces are kept in the bucket folder's trash, listed by `history`
and brought back by `recover`, with and without a running `start`. Real rclone, real servers.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from conftest import CLI, Bucket, clean_env, synced_tree, wait_until
from rclone_jupyter.model.trash import DELETED, REPLACED, TRASH, Kept

S = 1_000_000_000


def trash_object(rel: str, at_ns: int, kind: str = DELETED, mode: int = 0o644) -> str:
    return f"{TRASH}/{Kept(at_ns, rel, kind, mode).name}"


def shell_env(s3, tmp_path, **extra: str) -> dict[str, str]:
    """The environment of a shell with no `start` running (its own state and data folders)."""
    return clean_env(HOME=str(tmp_path / "shell-home"), RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "shell-state"),
                     RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "shell-data"), **s3.env(), **extra)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=120)


def mode_of(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def tree_json(bucket: Bucket) -> dict:
    return json.loads(bucket._snapshot().get(".rclone-jupyter/tree.json", b"{}"))


# -- history and recover over a trash written by hand (their own job, apart from the push) ------------------

def test_history_lists_kept_versions_newest_first_and_never_the_users_files(s3, tmp_path):
    env = shell_env(s3, tmp_path)
    bucket = Bucket(tmp_path, s3.env())
    now = time.time_ns()
    bucket.put("notes.txt", b"current")
    bucket.put(trash_object("notes.txt", now - 3600 * S, REPLACED), b"older")
    bucket.put(trash_object("notes.txt", now - 60 * S, DELETED), b"old")
    bucket.put(trash_object("other/x.txt", now - 30 * S), b"x")
    result = cli(env, "history", "notes.txt", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [(r["path"], r["kind"], r["size"]) for r in records] == [("notes.txt", DELETED, 3),
                                                                   ("notes.txt", REPLACED, 5)]
    text = cli(env, "history").stdout
    assert text.index("other/x.txt") < text.index("notes.txt")  # newest first
    assert bucket.files() == {"notes.txt": b"current"}  # the trash is not among the user's files


def test_recover_without_start_copies_back_in_the_bucket_keeps_the_current_one_and_the_mode(s3, daemons, tmp_path):
    env = shell_env(s3, tmp_path)
    bucket = Bucket(tmp_path, s3.env())
    at = time.time_ns() - 120 * S
    bucket.put(trash_object("bin/run.sh", at, DELETED, 0o755), b"#!/bin/sh\necho kept\n")
    bucket.put("bin/run.sh", b"#!/bin/sh\necho new\n")
    result = cli(env, "recover", "bin/run.sh")
    assert result.returncode == 0, result.stderr
    assert "bucket" in result.stdout and "conflict" in result.stdout
    assert bucket.files() == {"bin/run.sh": b"#!/bin/sh\necho kept\n", "bin/run.conflict1.sh": b"#!/bin/sh\necho new\n"}
    assert tree_json(bucket)["modes"] == {"bin/run.sh": "0755"}
    # A fresh container restores it, executable again; and the trash is not restored.
    daemon = daemons(s3.env()).start()
    assert synced_tree(daemon.data) == bucket.files()
    assert mode_of(daemon.data / "bin/run.sh") == 0o755
    assert not (daemon.data / ".rclone-jupyter").exists()


def test_recover_with_a_running_start_writes_the_data_folder_and_the_start_saves_it(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    at = time.time_ns() - 120 * S
    bucket.put(trash_object("tool", at, DELETED, 0o700), b"binary")
    bucket.put(trash_object("link.rclonelink", at, DELETED), b"tool")
    (daemon.data / "tool").write_bytes(b"made since")
    daemon.wait_synced()
    result = daemon.cli("recover", "")
    assert result.returncode == 0, result.stderr
    assert "data folder" in result.stdout
    assert (daemon.data / "tool").read_bytes() == b"binary" and mode_of(daemon.data / "tool") == 0o700
    assert (daemon.data / "tool.conflict1").read_bytes() == b"made since"
    assert os.readlink(daemon.data / "link") == "tool"  # a deleted link comes back as a link
    wait_until(lambda: bucket.files() == {"tool": b"binary", "tool.conflict1": b"made since", "link.rclonelink": b"tool"},
               timeout=30, message="the recovered files saved by the running start")


def test_recover_of_nothing_kept_is_an_error_that_points_at_history(s3, tmp_path):
    result = cli(shell_env(s3, tmp_path), "recover", "never-there.txt")
    assert result.returncode == 1
    assert "nothing kept of never-there.txt" in result.stderr and "history" in result.stderr


@pytest.mark.parametrize("args, what", [(["recover", "/etc/passwd"], "not inside the data folder"),
                                        (["recover", "x", "--at", "yesterday"], "2026-12-01T20:42:05Z"),
                                        (["history", ".rclone-jupyter/trash"], "own folder")])
def test_bad_arguments_exit_2_and_say_why(s3, tmp_path, args, what):
    result = cli(shell_env(s3, tmp_path), *args)
    assert result.returncode == 2 and what in result.stderr and "Traceback" not in result.stderr
