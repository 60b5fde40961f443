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

from cloud_servers import azurite, clouds, fake_gcs  # noqa: F401 - fixtures
from conftest import CLI, Bucket, clean_env, settled, synced_tree, wait_until
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
    settled(lambda: bucket.files() == {"tool": b"binary", "tool.conflict1": b"made since", "link.rclonelink": b"tool"},
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


def test_a_bad_keep_days_exits_2_naming_it_without_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"),
           "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data"), "RCLONE_JUPYTER_KEEP_DAYS": "a week"}
    result = subprocess.run([CLI, "history"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "RCLONE_JUPYTER_KEEP_DAYS" in result.stderr and "Traceback" not in result.stderr


# -- the push keeps what it replaces ------------------------------------------------------------------------

def history_of(daemon, rel: str = "") -> list[dict]:
    result = daemon.cli("history", rel, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def trash_objects(bucket: Bucket) -> dict[str, bytes]:
    return {k: v for k, v in bucket._snapshot().items() if k.startswith(TRASH + "/")}


def test_delete_then_history_lists_it_then_recover_brings_it_back_byte_for_byte_with_its_mode(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    script = daemon.data / "bin/train.sh"
    script.parent.mkdir()
    payload = b"#!/bin/sh\n" + os.urandom(300_000)
    script.write_bytes(payload)
    script.chmod(0o755)
    daemon.wait_synced()
    settled(lambda: bucket.files().get("bin/train.sh") == payload, message="the script in the bucket")
    mtime = script.stat().st_mtime_ns
    script.unlink()
    settled(lambda: "bin/train.sh" not in bucket.files(), message="the delete in the bucket")
    records = history_of(daemon, "bin")
    assert [(r["path"], r["kind"], r["size"], r["mode"]) for r in records] == [
        ("bin/train.sh", DELETED, len(payload), "0755")]
    result = daemon.cli("recover", "bin/train.sh")
    assert result.returncode == 0, result.stderr
    assert script.read_bytes() == payload and mode_of(script) == 0o755
    assert abs(script.stat().st_mtime_ns - mtime) <= 1_000_000  # the time it had, to the millisecond
    settled(lambda: bucket.files().get("bin/train.sh") == payload, message="the recovered script saved again")


def test_three_overwrites_within_keep_every_keep_one_version(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    target = daemon.data / "results.csv"
    for n in range(4):
        target.write_text(f"version {n}\n")
        settled(lambda n=n: bucket.files().get("results.csv") == f"version {n}\n".encode(),
                message=f"version {n} in the bucket")
    assert list(trash_objects(bucket).values()) == [b"version 0\n"]  # the first overwrite's; not 1 nor 2


def test_overwrites_further_apart_than_keep_every_each_keep_a_version(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_KEEP_EVERY": "1"}).start()
    target = daemon.data / "results.csv"
    target.write_text("version 0\n")
    settled(lambda: "results.csv" in bucket.files(), message="version 0 in the bucket")
    for n in (1, 2, 3):
        # The rule's own condition: KEEP_EVERY has passed since the last kept version (none: at once).
        kept = history_of(daemon, "results.csv")
        if kept:
            wait_until(lambda: time.time() > max(trash_time(r) for r in kept) + 1.05, message="KEEP_EVERY passed")
        target.write_text(f"version {n}\n")
        settled(lambda n=n: len(trash_objects(bucket)) == n, message=f"{n} kept version(s)")
    assert sorted(trash_objects(bucket).values()) == [b"version 0\n", b"version 1\n", b"version 2\n"]


def reconciles(daemon) -> set[str]:
    return {r.get("last_reconcile") for r in ((daemon.status() or {}).get("remotes") or {}).values()} - {None}


def wait_for_reconciles(daemon, n: int) -> None:
    """Wait until the status shows `n` more reconciles (their times) than now."""
    seen: set[str] = set(reconciles(daemon))
    start = len(seen)

    def more() -> bool:
        seen.update(reconciles(daemon))
        return len(seen) >= start + n

    wait_until(more, timeout=30, message=f"{n} reconciles")


def trash_time(record: dict) -> float:
    from rclone_jupyter.model import trash

    return trash.parse(record["object"][len(TRASH) + 1:]).at_ns / S


def test_a_large_file_overwritten_keeps_its_version_too(s3, daemons, tmp_path):
    # Files of 1 MiB or more upload as background jobs (the large lane): they keep what they replace as well.
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    first, second = os.urandom(3 * 1024 * 1024), os.urandom(3 * 1024 * 1024)
    (daemon.data / "model.ckpt").write_bytes(first)
    settled(lambda: bucket.files().get("model.ckpt") == first, timeout=60, message="the first checkpoint")
    (daemon.data / "model.ckpt").write_bytes(second)
    settled(lambda: bucket.files().get("model.ckpt") == second, timeout=60, message="the second checkpoint")
    assert list(trash_objects(bucket).values()) == [first]


def test_rm_rf_of_a_500_file_folder_is_recovered_with_one_command(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    project = daemon.data / "project"
    content = {f"project/part{i % 5}/file{i:03d}.txt": f"content {i}\n".encode() for i in range(500)}
    for rel, data in content.items():
        (daemon.data / rel).parent.mkdir(parents=True, exist_ok=True)
        (daemon.data / rel).write_bytes(data)
    (daemon.data / "project/part0/file000.txt").chmod(0o750)
    (daemon.data / "keep.txt").write_text("not in the folder")
    settled(lambda: len(bucket.names()) == 501, timeout=120, message="501 files in the bucket")
    subprocess.run(["rm", "-rf", str(project)], check=True)
    settled(lambda: bucket.names() == {"keep.txt"}, timeout=120, message="the rm -rf in the bucket")
    daemon.wait_synced()
    result = daemon.cli("recover", "project")
    assert result.returncode == 0, result.stderr
    assert "Recovered 500 file(s)" in result.stdout
    assert synced_tree(daemon.data) == {**content, "keep.txt": b"not in the folder"}
    assert mode_of(daemon.data / "project/part0/file000.txt") == 0o750
    settled(lambda: len(bucket.names()) == 501, timeout=120, message="the recovered folder saved again")
    assert bucket.files() == {**content, "keep.txt": b"not in the folder"}


def test_a_fresh_container_never_restores_the_trash_nor_counts_it(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    first = daemons(s3.env(), name="first").start()
    for n in range(3):
        (first.data / f"f{n}.txt").write_text(f"file {n}")
    settled(lambda: len(bucket.files()) == 3, message="3 files in the bucket")
    (first.data / "f0.txt").unlink()
    (first.data / "f1.txt").unlink()
    settled(lambda: len(trash_objects(bucket)) == 2, message="2 kept versions")
    first.stop()
    kept = trash_objects(bucket)
    second = daemons({**s3.env(), "RCLONE_JUPYTER_RECONCILE_INTERVAL": "0.5"}, name="second")
    second.data.mkdir()
    second.start()
    assert synced_tree(second.data) == {"f2.txt": b"file 2"}
    assert not (second.data / ".rclone-jupyter").exists()
    wait_for_reconciles(second, 2)
    (second.data / "f3.txt").write_text("a change after a few reconciles")
    settled(lambda: "f3.txt" in bucket.files(), message="the new file")
    assert trash_objects(bucket) == kept  # nothing restored, nothing deleted, nothing "vanished"
    assert "disappeared" not in second.log()


def test_nothing_is_deleted_or_overwritten_that_could_not_be_kept(tmp_path, daemons):
    from conftest import S3Server

    server = S3Server(tmp_path / "s3root").start()  # its objects are files in a folder we can break
    try:
        bucket = Bucket(tmp_path, server.env())
        daemon = daemons(server.env()).start()
        (daemon.data / "a.txt").write_text("precious")
        (daemon.data / "b.txt").write_text("first")
        settled(lambda: len(bucket.files()) == 2, message="both files in the bucket")
        daemon.wait_synced()
        # A file where the trash folder must be: every copy into the trash fails.
        blocker = tmp_path / "s3root" / server.bucket / "team/alice" / TRASH
        blocker.parent.mkdir(parents=True, exist_ok=True)
        blocker.write_text("in the way")
        (daemon.data / "a.txt").unlink()
        (daemon.data / "b.txt").write_text("second")
        wait_until(lambda: (daemon.status() or {}).get("last_error"), timeout=30, message="the error in the status")
        assert bucket.files() == {"a.txt": b"precious", "b.txt": b"first"}
        assert (daemon.status() or {}).get("pending") == 2
        blocker.unlink()  # fixed: the pending changes land, and what they replaced is kept
        settled(lambda: bucket.files() == {"b.txt": b"second"}, timeout=60, message="the changes after the fix")
        assert sorted(trash_objects(bucket).values()) == [b"first", b"precious"]
        assert daemon.stop() == 0, daemon.log()[-3000:]  # before its server goes: nothing is left to save
    finally:
        server.stop()


# -- expiry ------------------------------------------------------------------------------------------------

def test_versions_expire_after_keep_days_on_a_clock_we_set(s3, tmp_path):
    from conftest import make_engine
    from rclone_jupyter.config.settings import Keep
    from rclone_jupyter.engine.keeper import Keeper

    day = 86_400 * S
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("a.txt", b"a")
    bucket.put("b.txt", b"b")
    engine = make_engine(s3.env(), tmp_path)
    now = [time.time_ns()]
    keeper = Keeper(engine.keeper.folder, Keep(days=7, every=600), clock=lambda: now[0])
    try:
        keeper.before_overwrite({"a.txt": 0o644})
        now[0] += 3 * day
        keeper.before_overwrite({"b.txt": 0o644})
        assert sorted(trash_objects(bucket).values()) == [b"a", b"b"]
        now[0] += 4 * day - S  # a is 7 days less a second old
        assert keeper.expire() == 0 and len(trash_objects(bucket)) == 2
        now[0] += 2 * S  # a is older than 7 days now
        assert keeper.expire() == 1
        assert list(trash_objects(bucket).values()) == [b"b"]
        now[0] += 3 * day + 2 * S
        assert keeper.expire() == 1 and trash_objects(bucket) == {}
        assert bucket.files() == {"a.txt": b"a", "b.txt": b"b"}  # the user's files are never touched
    finally:
        engine.rclone.close()


def test_moves_and_deletes_without_lookups_keep_what_they_move_and_tolerate_what_is_gone(s3, tmp_path):
    """On S3 the store's moves and deletes take each object as named, with no HEAD (rclone/commands.py,
    unchecked_fs): a move still keeps the object's bytes and time, a delete of an object already gone is done,
    and a move of one gone fails (the push then looks again) without touching the others."""
    from conftest import make_engine
    from rclone_jupyter.errors import RcloneError

    bucket = Bucket(tmp_path, s3.env())
    an_hour_ago = time.time() - 3600
    bucket.put("a.txt", b"a", mtime=an_hour_ago)
    bucket.put("d/b.txt", b"b")
    bucket.put("c.txt", b"c")
    engine = make_engine(s3.env(), tmp_path)
    try:
        engine.store.move_many(["a.txt", "d/b.txt"], "", "kept")
        assert set(engine.store.list()) == {"c.txt", "kept/a.txt", "kept/d/b.txt"}
        # The file's time (rclone's metadata, read by a HEAD) went with it, not the moment of the copy.
        assert abs(engine.store.stat(["kept/a.txt"])["kept/a.txt"].mtime_ns - an_hour_ago * 1e9) < 1e9
        engine.store.delete(["c.txt", "never-there.txt"])
        assert set(engine.store.list()) == {"kept/a.txt", "kept/d/b.txt"}
        with pytest.raises(RcloneError):
            engine.store.move_many(["gone.txt"], "kept", "")
        assert bucket.files() == {"kept/a.txt": b"a", "kept/d/b.txt": b"b"}
    finally:
        engine.rclone.close()


def test_an_expiry_with_nothing_due_sends_no_request(tmp_path):
    from conftest import MotoS3, make_engine
    from rclone_jupyter.config.settings import Keep
    from rclone_jupyter.engine.keeper import Keeper

    moto = MotoS3(tmp_path / "moto").start()
    try:
        Bucket(tmp_path, moto.env()).put("a.txt", b"a")
        engine = make_engine(moto.env(), tmp_path)
        now = [time.time_ns()]
        keeper = Keeper(engine.keeper.folder, Keep(days=7, every=600), clock=lambda: now[0])
        keeper.before_overwrite({"a.txt": 0o644})
        keeper.expire()  # the first one lists the trash
        moto.mark()
        now[0] += 6 * 86_400 * S
        assert keeper.expire() == 0
        assert sum(moto.counts().values()) == 0
        engine.rclone.close()
    finally:
        moto.stop()


def test_the_periodic_reconcile_removes_expired_versions(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    # 0.00004 days is 3.5 s: the reconcile every 0.5 s removes a version that old.
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_KEEP_DAYS": "0.00004",
                      "RCLONE_JUPYTER_RECONCILE_INTERVAL": "0.5"}).start()
    (daemon.data / "a.txt").write_text("a")
    settled(lambda: "a.txt" in bucket.files(), message="a.txt in the bucket")
    (daemon.data / "a.txt").unlink()
    settled(lambda: len(trash_objects(bucket)) == 1, message="the delete kept")
    settled(lambda: trash_objects(bucket) == {}, timeout=30, message="the kept version expired")
    wait_until(lambda: "removed 1 version(s)" in daemon.log(), message="the expiry's log line")  # after its run


def test_keep_days_zero_keeps_nothing(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_KEEP_DAYS": "0"}).start()
    (daemon.data / "a.txt").write_text("a")
    settled(lambda: "a.txt" in bucket.files(), message="a.txt in the bucket")
    (daemon.data / "a.txt").write_text("b")
    settled(lambda: bucket.files().get("a.txt") == b"b", message="the overwrite")
    (daemon.data / "a.txt").unlink()
    settled(lambda: bucket.files() == {}, message="the delete")
    assert trash_objects(bucket) == {}


# -- what keeping costs in requests (moto's log) ----------------------------------------------------------

def test_a_kept_version_is_one_server_side_copy_and_no_byte_goes_down_or_up_twice(tmp_path, daemons):
    from conftest import MotoS3

    moto = MotoS3(tmp_path / "moto").start()
    try:
        bucket = Bucket(tmp_path, moto.env())
        daemon = daemons({**moto.env(), "RCLONE_JUPYTER_HEARTBEAT_INTERVAL": "0"}).start()
        target = daemon.data / "results.csv"
        target.write_bytes(b"1" * 100_000)
        settled(lambda: "results.csv" in bucket.files(), message="the first version")
        daemon.wait_synced()
        counts = []
        for content in (b"2" * 100_000, b"3" * 100_000):  # kept, then within KEEP_EVERY: not kept
            moto.mark()
            target.write_bytes(content)
            settled(lambda content=content: bucket.files().get("results.csv") == content, message="the overwrite")
            daemon.wait_synced()
            counts.append(moto.counts())
        moto.mark()
        target.unlink()
        settled(lambda: "results.csv" not in bucket.files(), message="the delete")
        daemon.wait_synced()
        counts.append(moto.counts())
        kept, not_kept, deleted = counts
        # The push's HEAD (what is there now), rclone's HEAD of the source (its time and size), the CopyObject,
        # the PUT: no HEAD of the copy after it.
        assert (kept["COPY"], kept["PUT"], kept["GET"], kept["HEAD"]) == (1, 1, 0, 2), kept
        assert (not_kept["COPY"], not_kept["PUT"], not_kept["GET"], not_kept["HEAD"]) == (0, 1, 0, 1), not_kept
        # A delete is a move into the trash: our HEAD, rclone's HEAD of the source, the CopyObject, the DELETE.
        assert (deleted["COPY"], deleted["DELETE"], deleted["GET"], deleted["PUT"], deleted["HEAD"]) == (
            1, 1, 0, 0, 2), deleted
        assert sorted(trash_objects(bucket).values()) == [b"1" * 100_000, b"3" * 100_000]
    finally:
        moto.stop()


# -- the server-side copies on Azure and Google Cloud Storage ------------------------------------------------

@pytest.fixture(params=["azure", "gcs-json"])
def cloud(request, clouds):  # noqa: F811 - the fixture imported below
    return clouds(request.param)


def test_keep_and_recover_through_server_side_copies_on_other_clouds(cloud, daemons, tmp_path):
    env = cloud.env()
    bucket = Bucket(tmp_path, env)
    daemon = daemons(env).start()
    (daemon.data / "nb.ipynb").write_text('{"cells": [1]}')
    settled(lambda: "nb.ipynb" in bucket.files(), timeout=40, message="the notebook in the bucket")
    (daemon.data / "nb.ipynb").write_text('{"cells": []}')  # emptied by a crash, and autosaved
    settled(lambda: bucket.files().get("nb.ipynb") == b'{"cells": []}', timeout=40, message="the overwrite")
    (daemon.data / "run.sh").write_text("#!/bin/sh\n")
    (daemon.data / "run.sh").chmod(0o755)
    settled(lambda: "run.sh" in bucket.files(), timeout=40, message="run.sh in the bucket")
    (daemon.data / "run.sh").unlink()
    settled(lambda: "run.sh" not in bucket.files(), timeout=40, message="the delete")
    assert sorted(trash_objects(bucket).values()) == [b"#!/bin/sh\n", b'{"cells": [1]}']
    daemon.stop()
    # No start running: back in the bucket, by server-side copies; the current notebook kept beside it.
    shell = clean_env(HOME=str(tmp_path / "shell"), RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "shell-state"),
                      RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "shell-data"), **env)
    assert cli(shell, "recover", "nb.ipynb").returncode == 0
    assert cli(shell, "recover", "run.sh").returncode == 0
    assert bucket.files() == {"nb.ipynb": b'{"cells": [1]}', "nb.conflict1.ipynb": b'{"cells": []}',
                              "run.sh": b"#!/bin/sh\n"}
    fresh = daemons(env, name="fresh")
    fresh.data.mkdir()
    fresh.start()
    assert synced_tree(fresh.data) == bucket.files()
    assert mode_of(fresh.data / "run.sh") == 0o755
    assert not (fresh.data / ".rclone-jupyter").exists()


def test_two_clouds_history_shows_a_version_once_and_one_cloud_down_hides_nothing(clouds, daemons, tmp_path):  # noqa: F811
    """S3 and Azure at once: each keeps the version its push replaced; `history` shows it once, naming both
    clouds. With S3 down, `history` still lists it (from Azure, with a WARNING naming S3) and `recover` brings
    it back in the cloud that answers."""
    from conftest import MotoS3

    moto = MotoS3(tmp_path / "moto").start()  # this test's own: it goes down
    try:
        envs = {"s3": moto.env(), "azure": clouds("azure").env()}
        env = {k: v for part in envs.values() for k, v in part.items()}
        buckets = {}
        for kind, part in envs.items():
            (tmp_path / kind).mkdir()
            buckets[kind] = Bucket(tmp_path / kind, part)
        daemon = daemons({**env, "RCLONE_JUPYTER_HEARTBEAT_INTERVAL": "0"}).start()
        (daemon.data / "results.csv").write_bytes(b"a,b\n1,2\n")
        for kind, bucket in buckets.items():
            settled(lambda: "results.csv" in bucket.files(), timeout=30, message=f"results.csv in {kind}")
        (daemon.data / "results.csv").unlink()
        for kind, bucket in buckets.items():
            settled(lambda: bucket.files() == {}, timeout=30, message=f"the delete in {kind}")
        assert daemon.stop() == 0

        shell = clean_env(HOME=str(tmp_path / "shell"), RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "shell-state"),
                          RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "shell-data"), **env)
        both = cli(shell, "history", "--json")
        assert both.returncode == 0, both.stderr
        assert [(r["path"], r["kind"], r["clouds"]) for r in json.loads(both.stdout)] == [
            ("results.csv", DELETED, ["s3", "azure"])]

        moto.stop()  # S3 down: Azure's trash still answers
        one = cli(shell, "history", "--json")
        assert one.returncode == 0, one.stderr
        assert [(r["path"], r["clouds"]) for r in json.loads(one.stdout)] == [("results.csv", ["azure"])]
        assert "cannot be read now" in one.stderr and "s3://" in one.stderr
        back = cli(shell, "recover", "results.csv")
        assert back.returncode == 0, back.stderr
        assert buckets["azure"].files() == {"results.csv": b"a,b\n1,2\n"}
    finally:
        moto.stop()


def test_the_panels_routes_list_search_and_recover_what_was_deleted(s3, daemons, tmp_path):
    """What the Sync status panel's "Recently deleted or replaced" asks of the running `start` (its control
    channel, daemon/undo_routes.py): the newest kept versions, a search by path, and Recover."""
    from rclone_jupyter.client import ControlClient

    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons(s3.env()).start()
    (daemon.data / "results.csv").write_bytes(b"a,b\n1,2\n")
    (daemon.data / "run.sh").write_text("#!/bin/sh\n")
    (daemon.data / "run.sh").chmod(0o755)
    settled(lambda: set(bucket.files()) == {"results.csv", "run.sh"}, message="both saved")
    (daemon.data / "results.csv").unlink()
    (daemon.data / "run.sh").unlink()
    settled(lambda: len(trash_objects(bucket)) == 2, message="2 kept versions")
    daemon.wait_synced()

    client = ControlClient(daemon.state)
    answer = client.history()
    assert answer["ok"] and answer["count"] == 2 and answer["keep_days"] == 7, answer
    assert {v["path"] for v in answer["versions"]} == {"results.csv", "run.sh"}
    assert [v["path"] for v in client.history("RESULTS")["versions"]] == ["results.csv"]
    assert client.history("nothing like it")["count"] == 0

    kept = next(v for v in answer["versions"] if v["path"] == "run.sh")
    done = client.recover("run.sh", kept["time"])
    assert done["ok"] and done["recovered"] == ["run.sh"], done
    assert (daemon.data / "run.sh").read_text() == "#!/bin/sh\n" and mode_of(daemon.data / "run.sh") == 0o755
    settled(lambda: set(bucket.files()) == {"run.sh"}, message="the recovered file saved again")
    outside = client.recover("../outside.txt", kept["time"])
    assert not outside["ok"] and "not inside the data folder" in outside["error"]
    assert not client.recover("results.csv", "2001-01-01T00:00:00Z")["ok"]  # nothing kept that early
    assert daemon.stop() == 0


def test_sync_once_without_start_keeps_what_its_bisync_deletes_or_overwrites_in_the_bucket(s3, tmp_path):
    env = shell_env(s3, tmp_path)
    bucket = Bucket(tmp_path, s3.env())
    data = tmp_path / "shell-data"
    data.mkdir()
    (data / "results.csv").write_text("first results\n")
    (data / "scratch.txt").write_text("notes\n")
    (data / "other.txt").write_text("stays\n")
    assert cli(env, "sync", "--once").returncode == 0  # bisync's first run: its baseline
    assert set(bucket.files()) == {"results.csv", "scratch.txt", "other.txt"}
    (data / "results.csv").write_text("second results, longer\n")
    (data / "scratch.txt").unlink()
    result = cli(env, "sync", "--once")
    assert result.returncode == 0, result.stderr
    assert bucket.files() == {"results.csv": b"second results, longer\n", "other.txt": b"stays\n"}
    kept = {r["path"] for r in json.loads(cli(env, "history", "--json").stdout)}
    assert kept == {"results.csv", "scratch.txt"}
    assert {v for v in trash_objects(bucket).values()} == {b"first results\n", b"notes\n"}
    assert cli(env, "recover", "scratch.txt").returncode == 0
    assert bucket.files()["scratch.txt"] == b"notes\n"
