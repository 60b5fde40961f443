"""Fault injection (issue 4): the bucket is the disk, so nothing is lost and nothing is wrongly deleted.

One test per row of the issue. Each runs a real `rclone-jupyter start --no-jupyter`, real rclone and a real
S3 server (`rclone serve s3` and moto's) that the test takes down, freezes (SIGSTOP), brings back and re-keys,
and ends by comparing the bucket folder's content (names and bytes) with the data folder's.

Sizes are scaled down for CI where the behaviour is the same: a 30 s outage becomes ~4 s, "large" files
are 24-40 MiB, and the 100,000-file tree of row 11 is 1,200 files in 300 folders with a watch limit of 50.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from conftest import Bucket, needs, settled, synced_tree, wait_until

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("RJ_TEST_S3_ENDPOINT")),
    reason="these tests stop, freeze and re-key the S3 server: they need a local one (rclone serve s3, moto)",
)

FAST_RETRY = {"RCLONE_JUPYTER_RETRY_INTERVAL": "0.3"}


# -- helpers ----------------------------------------------------------------------------------------------


def same_content(bucket: Bucket, data: Path, timeout: float = 30.0) -> dict[str, bytes]:
    """Wait until the bucket folder holds exactly what the data folder holds (names and bytes); return it."""
    def check():
        local = synced_tree(data)
        return [local] if bucket.files() == local else None  # a list, so an empty tree is still a match

    try:
        return settled(check, timeout, message="bucket == data folder")[0]
    except AssertionError as exc:
        if "timed out" not in str(exc):
            raise
        local, remote = synced_tree(data), bucket.files()
        missing = sorted(set(local) - set(remote))
        extra = sorted(set(remote) - set(local))
        differ = sorted(k for k in set(local) & set(remote) if local[k] != remote[k])
        raise AssertionError(f"bucket != data folder: missing in bucket {missing}, only in bucket {extra}, "
                             f"different {differ}") from None


def uploading(daemon, rel: str) -> list[int]:
    """Pids of the rclone processes reading this file of the daemon's data folder now (an upload in flight).

    Uploads run inside the daemon's long-running `rclone rcd`: the process is found by the file it holds open.
    """
    target = str(daemon.data / rel)
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
            if not argv[0].endswith(b"rclone"):
                continue
            fds = os.listdir(f"/proc/{pid}/fd")
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in fds):
                pids.append(int(pid))
        except OSError:
            continue
    return pids


def freeze(s3) -> None:
    """The server stops answering but keeps accepting connections: requests hang mid-way."""
    os.kill(s3.proc.pid, signal.SIGSTOP)


def thaw(s3) -> None:
    os.kill(s3.proc.pid, signal.SIGCONT)


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def errors_in(log: str) -> list[str]:
    return [line for line in log.splitlines() if " ERROR " in line or "Traceback" in line]


# -- 1. the storage server is down while the user keeps writing --------------------------------------------


@pytest.mark.private_s3  # takes the server down
def test_01_server_down_while_writing_then_back(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY}).start()
    write(daemon.data / "before.txt", "before the outage")
    same_content(bucket, daemon.data)

    s3.down()  # connections refused, the objects kept (moto: its gate closes; serve s3: stopped)
    for i in range(8):  # the user keeps working for ~4 s (scaled down from 30 s)
        write(daemon.data / f"during/{i}.txt", f"written while the server is down {i}")
        write(daemon.data / "before.txt", f"edited during the outage {i}")
        time.sleep(0.5)
    (daemon.data / "during/0.txt").unlink()
    status = wait_until(lambda: (s := daemon.status() or {}).get("last_error") and s, timeout=30,
                        message="the error in the status")
    assert status["pending"] > 0
    assert "next try in" in daemon.log()  # transient failures are retried (by the syncer alone), each one logged
    cli = json.loads(daemon.cli("status", "--json").stdout)
    assert cli["last_error"] and cli["pending"] > 0

    s3.up()  # same port, same bucket folder: no restart of rclone-jupyter
    expected = same_content(bucket, daemon.data, timeout=60)
    assert "during/0.txt" not in expected and expected["before.txt"] == b"edited during the outage 7"
    daemon.wait_synced()
    assert daemon.stop() == 0
    assert bucket.files() == expected


# -- 2. rclone is killed mid-transfer ----------------------------------------------------------------------


@pytest.mark.private_s3  # freezes the server
def test_02_rclone_killed_mid_transfer(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY}).start()
    payload = os.urandom(64 * 1024 * 1024)
    write(daemon.data / "big.bin", payload)
    pids = wait_until(lambda: uploading(daemon, "big.bin"), timeout=15, interval=0.005, message="the upload")
    freeze(s3)  # the upload stays in flight (its bytes sit in the socket) until we kill it
    try:
        time.sleep(0.5)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pytest.fail("the upload finished before it could be killed: use a larger file on this machine")
    finally:
        thaw(s3)
    # Never a partial object as the file's content: absent, or complete.
    for _ in range(10):
        seen = bucket.files().get("big.bin")
        assert seen is None or seen == payload, f"a partial object of {len(seen)} bytes is in the bucket"
        if seen == payload:
            break
    same_content(bucket, daemon.data)
    assert "attempt 1 failed" in daemon.log() or "kept pending" in daemon.log()
    assert daemon.stop() == 0
    assert bucket.files() == {"big.bin": payload}


# -- 3. SIGTERM while a sync runs and more changes are pending ---------------------------------------------


def test_03_sigterm_during_a_sync_lands_everything(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_QUIET_PERIOD": "0.1"}).start()
    write(daemon.data / "big.bin", os.urandom(24 * 1024 * 1024))
    wait_until(lambda: uploading(daemon, "big.bin"), timeout=15, interval=0.01, message="the upload")
    for i in range(3):  # pending behind the running sync
        write(daemon.data / f"late/{i}.txt", f"late {i}")
    started = time.monotonic()
    assert daemon.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 20  # within RCLONE_JUPYTER_FLUSH_DEADLINE
    assert "every change is saved" in daemon.log()
    same_content(bucket, daemon.data, timeout=1)


@pytest.mark.private_s3  # freezes the server
def test_03_sigterm_with_a_too_short_deadline_says_what_was_not_saved(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_FLUSH_DEADLINE": "1",
                      "RCLONE_JUPYTER_QUIET_PERIOD": "30", "RCLONE_JUPYTER_MAX_DELAY": "60"}).start()
    write(daemon.data / "saved.txt", "saved")
    daemon.cli("sync", "--once")
    freeze(s3)  # the server hangs: the flush cannot finish in 1 s
    try:
        write(daemon.data / "unsaved-1.txt", "lost")
        write(daemon.data / "sub/unsaved-2.txt", "lost too")
        time.sleep(0.3)
        code = daemon.stop(signal.SIGTERM, timeout=30)
    finally:
        thaw(s3)
    assert code == 1
    lines = [line for line in daemon.log().splitlines() if "NOT saved" in line]
    assert lines and "unsaved-1.txt" in lines[0] and "sub/unsaved-2.txt" in lines[0]
    assert "RCLONE_JUPYTER_FLUSH_DEADLINE" in lines[0]
    # Nothing that was saved went missing; what was not saved is named above.
    assert bucket.files() == {"saved.txt": b"saved"}


# -- 4. SIGKILL, then a fresh container on an empty data folder --------------------------------------------


def test_04_sigkill_then_fresh_start_restores_everything_acknowledged(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("from-before.ipynb", b'{"cells": []}')
    bucket.put("to-delete.txt", b"x")
    old = daemons(s3.env(), name="old").start()
    write(old.data / "work/a.py", "print('a')")
    write(old.data / "from-before.ipynb", '{"cells": [1]}')
    (old.data / "to-delete.txt").unlink()
    old.wait_synced()
    acknowledged = same_content(bucket, old.data)
    old.kill()  # SIGKILL: no flush

    new = daemons(s3.env(), name="new")
    new.data.mkdir()
    new.start()
    assert synced_tree(new.data) == acknowledged
    time.sleep(1)
    assert bucket.files() == acknowledged  # nothing deleted, nothing changed by the fresh start
    assert new.cli("sync", "--once").returncode == 0  # a full reconcile deletes nothing either
    assert bucket.files() == acknowledged == synced_tree(new.data)
    assert new.stop() == 0


# -- 5. small trees, where bisync's own guards misfire -----------------------------------------------------


@pytest.mark.parametrize("push_mode", ["targeted", "bisync"])
def test_05_small_trees_behave_as_meant(s3, daemons, tmp_path, push_mode):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_PUSH_MODE": push_mode})
    daemon.data.mkdir()
    daemon.start()  # both sides empty
    data = daemon.data

    def step(expected: dict[str, bytes]) -> None:
        daemon.wait_synced()
        assert same_content(bucket, data) == expected
        # A full reconcile (bisync) on the same small tree must agree.
        result = daemon.cli("sync", "--once")
        assert result.returncode == 0, result.stderr
        assert bucket.files() == expected == synced_tree(data)

    write(data / "first.txt", "1")  # a first file after starting with both sides empty
    step({"first.txt": b"1"})
    write(data / "first.txt", "1 edited")  # an edit of the only file
    step({"first.txt": b"1 edited"})
    write(data / "b.txt", "b")
    write(data / "c.txt", "c")
    step({"first.txt": b"1 edited", "b.txt": b"b", "c.txt": b"c"})
    (data / "first.txt").unlink()  # 2 of 3 deleted
    (data / "b.txt").unlink()
    step({"c.txt": b"c"})
    (data / "c.txt").unlink()  # everything deleted on purpose
    step({})
    write(data / "again.txt", "again")  # and life goes on after an empty tree
    step({"again.txt": b"again"})
    assert not errors_in(daemon.log()), errors_in(daemon.log())
    assert daemon.stop() == 0


# -- 6. the bucket is emptied or mass-deleted from outside -------------------------------------------------


@pytest.mark.parametrize("how", ["emptied", "mass-deleted"])
def test_06_bucket_wiped_from_outside(s3, daemons, tmp_path, how):
    bucket = Bucket(tmp_path, s3.env())
    content = {f"nb{i}.ipynb": f"notebook {i}".encode() for i in range(5)}
    for rel, data in content.items():
        bucket.put(rel, data)
    daemon = daemons(s3.env()).start()
    assert synced_tree(daemon.data) == content
    doomed = list(content) if how == "emptied" else list(content)[:4]
    for rel in doomed:
        bucket.delete(rel)

    result = daemon.cli("sync", "--once")  # the periodic reconcile, now
    assert result.returncode == 0, result.stderr
    assert synced_tree(daemon.data) == content  # the local folder is not wiped
    loud = [line for line in daemon.log().splitlines() if " ERROR " in line and "disappeared" in line]
    assert loud, daemon.log()
    same_content(bucket, daemon.data)  # and the bucket holds everything again
    assert daemon.stop() == 0


# -- 7. a file still being written when its sync starts ----------------------------------------------------


def test_07_file_appended_while_it_syncs(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_QUIET_PERIOD": "0.2",
                      "RCLONE_JUPYTER_MAX_DELAY": "0.5"}).start()
    path = daemon.data / "growing.log"
    with open(path, "ab") as f:
        for i in range(40):  # ~4 s of appends; syncs start every 0.5 s meanwhile
            f.write(os.urandom(256 * 1024) + f"line {i}\n".encode())
            f.flush()
            time.sleep(0.1)
    final = same_content(bucket, daemon.data, timeout=40)
    assert final == {"growing.log": path.read_bytes()}  # the final content, and no conflict copies
    assert "here too" not in daemon.log()  # our own half-uploaded versions are not taken for a conflict
    daemon.wait_synced()
    assert daemon.stop() == 0
    assert bucket.files() == final


# -- 8. the same notebook changed in the bucket and here ---------------------------------------------------


@pytest.mark.parametrize("push_mode", ["targeted", "bisync"])
def test_08_conflict_keeps_both_versions(s3, daemons, tmp_path, push_mode):
    bucket = Bucket(tmp_path, s3.env())
    names = ("nb.ipynb", "work/deep/nb.ipynb")  # at the top and nested (the bucket check must see both)
    for rel in names:
        bucket.put(rel, b'{"v": "original"}')
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_PUSH_MODE": push_mode}).start()
    # Another machine saves the notebooks in the bucket; a moment later the user saves them here.
    for rel in names:
        bucket.put(rel, b'{"v": "theirs"}', mtime=time.time() - 5)
    for rel in names:
        write(daemon.data / rel, '{"v": "ours"}')
    final = same_content(bucket, daemon.data)
    expected = {}
    for rel in names:  # the newer keeps the name, the other is kept beside it under a name Jupyter opens
        expected[rel] = b'{"v": "ours"}'
        expected[rel.replace("nb.ipynb", "nb.conflict1.ipynb")] = b'{"v": "theirs"}'
    assert final == expected
    assert daemon.stop() == 0
    assert bucket.files() == final


# -- 9. two orchestrators on the same bucket folder --------------------------------------------------------


def test_09_two_orchestrators_on_one_bucket_folder(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    env = {**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_HEARTBEAT_INTERVAL": "1"}
    old = daemons(env, name="old").start()
    write(old.data / "shared.ipynb", "v1")
    write(old.data / "old-only.txt", "old")
    for i in range(4):
        write(old.data / f"common/{i}.txt", f"common {i}")
    same_content(bucket, old.data)
    new = daemons(env, name="new").start()  # SaladCloud starts the new container before the old one is gone
    assert synced_tree(new.data) == synced_tree(old.data)
    for daemon in (old, new):  # each one sees the other, and says so
        line = wait_until(lambda: next((x for x in daemon.log().splitlines() if "another rclone-jupyter" in x), None),
                          timeout=15, message="the warning")
        assert "WARNING" in line
    assert len(bucket.nodes()) == 2  # each one's heartbeat object

    write(new.data / "new-only.txt", "new")
    write(new.data / "shared.ipynb", "v2 from new")
    settled(lambda: (f := bucket.files()).get("shared.ipynb") == b"v2 from new" and "new-only.txt" in f,
               message="the new container's changes in the bucket")
    # The old one deletes a file only it knew, and the notebook the new one has changed meanwhile:
    # the first delete is applied, the second must not remove the newer version.
    (old.data / "old-only.txt").unlink()
    (old.data / "shared.ipynb").unlink()
    settled(lambda: (old.data / "shared.ipynb").exists() and "old-only.txt" not in bucket.files(),
               message="the delete applied and the newer notebook kept (and brought back to the old one)")
    assert (old.data / "shared.ipynb").read_bytes() == b"v2 from new"
    assert bucket.files()["shared.ipynb"] == b"v2 from new"
    assert old.stop() == 0
    assert len(bucket.nodes()) == 1  # a clean stop removes its own heartbeat

    result = new.cli("sync", "--once")  # the new one picks up the old one's delete
    assert result.returncode == 0, result.stderr
    final = same_content(bucket, new.data)
    assert final == {"shared.ipynb": b"v2 from new", "new-only.txt": b"new",
                     **{f"common/{i}.txt": f"common {i}".encode() for i in range(4)}}
    assert new.stop() == 0
    assert bucket.files() == final
    assert bucket.nodes() == {}


# -- 10. odd names ------------------------------------------------------------------------------------------


def test_10_odd_names_round_trip_and_links_are_kept_as_links_never_followed(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    outside = tmp_path / "outside"
    write(outside / "secret.txt", "outside the data folder")
    long_dir = "/".join(["d" * 100] * 5)
    odd = {
        "ünïcode ñame — 日本語.ipynb": "unicode".encode(),
        "with space/and more spaces.txt": b"spaces",
        "hash#and%percent%20.txt": b"hash and percent",
        "plus+&=;@,'quote'.txt": b"punctuation",
        f"{long_dir}/{'f' * 200}.txt": b"a very long path",
        "empty.txt": b"",
        "folder/empty-too": b"",
        "line\nbreak.txt": b"a name with a line break",
    }
    refused = {}
    if not getattr(s3, "holds_line_breaks_in_names", True):
        # This server refuses the name: the file must be reported as not saved, and block nothing else.
        refused = {"line\nbreak.txt": odd.pop("line\nbreak.txt")}
    daemon = daemons({**s3.env(), **FAST_RETRY}).start()
    data = daemon.data
    for rel, content in {**odd, **refused}.items():
        write(data / rel, content)
    os.symlink(outside / "secret.txt", data / "link-to-file.txt")
    os.symlink(outside, data / "link-to-dir")
    links = {"link-to-file.txt.rclonelink": str(outside / "secret.txt").encode(),
             "link-to-dir.rclonelink": str(outside).encode()}
    settled(lambda: bucket.files() == {**odd, **links}, timeout=30, message="names and links in the bucket")
    if refused:
        status = wait_until(lambda: (s := daemon.status() or {}).get("last_error") and s, message="the error")
        assert status["pending_paths"] == ["line\nbreak.txt"] and "line" in status["last_error"]
        (data / "line\nbreak.txt").unlink()  # the user gives up on it: nothing else was held back
        daemon.wait_synced()
    assert daemon.cli("sync", "--once").returncode == 0
    assert bucket.files() == {**odd, **links}  # a link's object holds its target's path, never its content
    assert (outside / "secret.txt").read_text() == "outside the data folder"  # untouched
    # Deleting a link deletes its object, and nothing outside.
    (data / "link-to-dir").unlink()
    (data / "empty.txt").unlink()
    del odd["empty.txt"], links["link-to-dir.rclonelink"]
    settled(lambda: bucket.files() == {**odd, **links}, timeout=30, message="the link's object deleted")
    assert (outside / "secret.txt").exists()
    assert daemon.stop() == 0

    fresh = daemons(s3.env(), name="fresh").start()  # everything comes back with its name, links as links
    assert synced_tree(fresh.data) == odd
    assert os.readlink(fresh.data / "link-to-file.txt") == str(outside / "secret.txt")
    assert not os.path.lexists(fresh.data / "link-to-dir")
    assert fresh.stop() == 0


def test_10_nothing_is_read_or_written_through_a_link(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    elsewhere = tmp_path / "elsewhere"
    write(elsewhere / "private.txt", "not for the bucket")
    daemon = daemons({**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_QUIET_PERIOD": "1"}).start()
    data = daemon.data
    # A folder swapped for a link within the quiet period: the push must not upload what is behind the link.
    write(data / "swap/private.txt", "mine")
    shutil.rmtree(data / "swap")
    os.symlink(elsewhere, data / "swap")
    # A link to a folder, and an object under that name written by someone else: no sync writes through it.
    os.symlink(elsewhere, data / "lnk")
    # Both saved as links (the tree of regular files is empty here and there: comparing it proves nothing).
    settled(lambda: {"lnk.rclonelink", "swap.rclonelink"} <= set(bucket.files()), message="both links saved")
    bucket.put("lnk/pwned.txt", b"written through the link?")
    assert daemon.cli("sync", "--once").returncode == 0
    assert daemon.cli("sync", "--once").returncode == 0
    assert sorted(os.listdir(elsewhere)) == ["private.txt"]  # nothing written there
    files = bucket.files()
    assert "swap/private.txt" not in files and b"not for the bucket" not in b"".join(files.values())
    assert files["lnk/pwned.txt"] == b"written through the link?"  # and the object is not deleted either
    assert os.path.islink(data / "lnk") and os.path.islink(data / "swap")
    assert daemon.stop() == 0


# -- 11. more folders than the inotify watch limit ---------------------------------------------------------


@pytest.mark.slow
def test_11_more_folders_than_the_watch_limit_falls_back_to_polling(s3, daemons, tmp_path):
    # The watcher's fallback does not depend on the storage, and 1,200 files cost half a minute per server.
    if s3.kind == "moto":
        pytest.skip("the polling fallback is the watcher's, not the storage's: it runs on one S3 server")
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY, "RCLONE_JUPYTER_WATCH_LIMIT": "50",
                      "RCLONE_JUPYTER_POLL_INTERVAL": "1"})
    # Scaled down from 100,000 files: 1,200 small files in 300 folders, with a watch limit of 50.
    for d in range(300):
        for f in range(4):
            write(daemon.data / f"dir{d:03d}/sub/file{f}.txt", f"{d}-{f}")
    daemon.start()
    log = daemon.log()
    warning = [line for line in log.splitlines() if "WARNING" in line and "watch limit" in line]
    assert warning, log
    same_content(bucket, daemon.data, timeout=60)
    # Syncing goes on through polling: create, change, delete, new folders.
    write(daemon.data / "dir000/sub/file0.txt", "changed")
    write(daemon.data / "brand/new/folder/x.txt", "new")
    (daemon.data / "dir299/sub/file3.txt").unlink()
    shutil.rmtree(daemon.data / "dir298")
    same_content(bucket, daemon.data, timeout=60)
    assert daemon.stop() == 0


# -- 12. bad credentials, a missing bucket, a key revoked mid-session --------------------------------------


def test_12_bad_credentials_and_missing_bucket_stop_with_a_clear_error_and_touch_nothing(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("in-bucket.txt", b"keep")
    cases = [("nobucket", {**s3.env(), "AWS_S3_BUCKET_FOLDER": "no-such-bucket/x"}, "does not exist")]
    if s3.checks_signatures:  # moto accepts any secret
        cases.insert(0, ("badkey", {**s3.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret-0000"},
                         "credentials were refused"))
    for name, env, words in cases:
        daemon = daemons(env, name=name)
        write(daemon.data / "local.txt", "local work")
        daemon.start(wait=False)
        assert daemon.proc.wait(timeout=120) != 0
        assert words in daemon.log() and "Traceback" not in daemon.log()
        assert synced_tree(daemon.data) == {"local.txt": b"local work"}  # nothing local touched
    assert bucket.files() == {"in-bucket.txt": b"keep"}


@pytest.mark.private_s3  # re-keys the server
def test_12_key_revoked_mid_session_keeps_changes_pending_until_fixed(s3, daemons, tmp_path):
    needs(s3, "checks_signatures", "it accepts any secret, so a revoked key cannot be refused")
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), **FAST_RETRY}).start()
    write(daemon.data / "before.txt", "before")
    same_content(bucket, daemon.data)
    good = s3.secret
    s3.stop()
    s3.secret = "rotated-Secret-0000-the-old-key-is-revoked"
    s3.start()
    try:
        write(daemon.data / "while-revoked.txt", "pending")
        (daemon.data / "before.txt").unlink()
        status = wait_until(lambda: (s := daemon.status() or {}).get("last_error") and s, timeout=30,
                            message="the error in the status")
        assert "credentials were refused" in status["last_error"]
        assert status["pending"] == 2
        assert "This needs fixing" in daemon.log()
    finally:
        s3.stop()
        s3.secret = good
        s3.start()  # the key works again (e.g. the operator restored it): no restart of rclone-jupyter
    same_content(bucket, daemon.data, timeout=60)
    assert bucket.files() == {"while-revoked.txt": b"pending"}
    assert daemon.stop() == 0
