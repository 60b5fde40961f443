"""The engine's rules, in-process, against rclone's local backend (engine_local.py): restore, push and
reconcile, each rule with a test that fails if the rule is broken. The same rules run against real S3 servers
in test_sync_s3.py, test_faults.py and test_fidelity.py."""

from __future__ import annotations

import time

import pytest

from engine_local import local_engine, push, started, stop_rcd, write  # noqa: F401 - stop_rcd: a fixture


def test_restore_brings_the_bucket_folder_and_knows_it_without_a_push(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"nb.ipynb": b"{}", "d/e.txt": b"e"})
    stop_rcd.append(engine)
    assert (engine.data_dir / "nb.ipynb").read_bytes() == b"{}" and (engine.data_dir / "d/e.txt").read_bytes() == b"e"
    assert sorted(engine.baseline) == ["d/e.txt", "nb.ipynb"] and not engine.remote_was_empty
    assert push(engine, "nb.ipynb").uploaded == 0  # as the bucket has it: nothing to send


def test_an_empty_bucket_folder_is_remote_was_empty(tmp_path, stop_rcd):
    engine, _ = started(tmp_path)
    stop_rcd.append(engine)
    assert engine.remote_was_empty


def test_a_file_only_here_at_start_is_uploaded_by_establish(tmp_path, stop_rcd):
    engine, bucket = local_engine(tmp_path)
    stop_rcd.append(engine)
    write(engine, "mine.txt", b"here first")
    engine.restore()
    engine.establish()
    assert bucket.files() == {"mine.txt": b"here first"}


def test_push_uploads_new_and_changed_files(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"old"})
    stop_rcd.append(engine)
    write(engine, "a.txt", b"new")
    write(engine, "b/c.txt", b"c")
    result = push(engine, "a.txt", "b/c.txt")
    assert result.uploaded == 2 and bucket.files() == {"a.txt": b"new", "b/c.txt": b"c"}


def test_push_deletes_only_what_was_deleted_here(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    stop_rcd.append(engine)
    (engine.data_dir / "a.txt").unlink()
    assert push(engine, "a.txt").deleted == 1
    assert bucket.files() == {"b.txt": b"b"}


def test_a_delete_here_of_a_file_changed_in_the_bucket_brings_it_back(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a"})
    stop_rcd.append(engine)
    bucket.put("a.txt", b"newer work elsewhere")
    (engine.data_dir / "a.txt").unlink()
    result = push(engine, "a.txt")
    assert result.deleted == 0 and result.pulled == 1
    assert (engine.data_dir / "a.txt").read_bytes() == b"newer work elsewhere"
    assert bucket.files() == {"a.txt": b"newer work elsewhere"}


@pytest.mark.parametrize("newer", ["here", "bucket"])
def test_a_file_changed_on_both_sides_is_kept_twice_and_the_newer_keeps_the_name(tmp_path, stop_rcd, newer):
    engine, bucket = started(tmp_path, {"nb.ipynb": b"v1"})
    stop_rcd.append(engine)
    now, before = time.time(), time.time() - 60
    write(engine, "nb.ipynb", b"mine", mtime=now if newer == "here" else before)
    bucket.put("nb.ipynb", b"theirs", mtime=before if newer == "here" else now)
    assert push(engine, "nb.ipynb").conflicts == 1
    winner, loser = (b"mine", b"theirs") if newer == "here" else (b"theirs", b"mine")
    expected = {"nb.ipynb": winner, "nb.conflict1.ipynb": loser}
    assert bucket.files() == expected
    assert {rel: (engine.data_dir / rel).read_bytes() for rel in expected} == expected


def test_reconcile_pulls_a_change_made_elsewhere(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a"})
    stop_rcd.append(engine)
    bucket.put("a.txt", b"edited elsewhere")
    bucket.put("new.txt", b"added elsewhere")
    result = engine.reconcile()
    assert result.pulled == 2
    assert (engine.data_dir / "a.txt").read_bytes() == b"edited elsewhere"
    assert (engine.data_dir / "new.txt").read_bytes() == b"added elsewhere"


def test_reconcile_deletes_here_a_file_deleted_elsewhere_and_untouched_here(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    stop_rcd.append(engine)
    bucket.delete("a.txt")
    assert engine.reconcile().deleted == 1
    assert not (engine.data_dir / "a.txt").exists() and (engine.data_dir / "b.txt").exists()


def test_reconcile_never_deletes_a_path_changed_here(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    stop_rcd.append(engine)
    bucket.delete("a.txt")
    write(engine, "a.txt", b"edited here")
    result = engine.reconcile(lambda rel: rel == "a.txt")
    assert result.deleted == 0 and result.uploaded == 1  # our version wins, and goes back
    assert bucket.files()["a.txt"] == b"edited here"


def test_an_emptied_bucket_folder_deletes_nothing_here_and_gets_the_files_back(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a", "b.txt": b"b"})
    stop_rcd.append(engine)
    bucket.delete("a.txt")
    bucket.delete("b.txt")
    result = engine.reconcile()
    assert result.deleted == 0
    assert bucket.files() == {"a.txt": b"a", "b.txt": b"b"}


def test_a_queued_delete_is_not_undone_by_a_reconcile(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"a.txt": b"a"})
    stop_rcd.append(engine)
    (engine.data_dir / "a.txt").unlink()  # the push is still queued
    engine.reconcile(lambda rel: rel == "a.txt")
    assert not (engine.data_dir / "a.txt").exists()
    assert push(engine, "a.txt").deleted == 1 and bucket.files() == {}


def test_a_chmod_reaches_the_bucket_and_comes_back_with_a_restore(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"run.sh": b"#!/bin/sh\n"})
    stop_rcd.append(engine)
    (engine.data_dir / "run.sh").chmod(0o755)
    push(engine, "run.sh")
    again, _ = local_engine(tmp_path / "second", bucket.root)  # a new container on the same bucket folder
    stop_rcd.append(again)
    again.restore()
    assert (again.data_dir / "run.sh").stat().st_mode & 0o777 == 0o755


def test_a_burst_of_new_names_still_finds_one_the_bucket_got_meanwhile(tmp_path, stop_rcd):
    # More than HEAD_LIMIT new names in a folder the bucket never held: one LIST of that folder replaces a HEAD
    # each. A file someone else put there meanwhile must still be seen, and kept (not overwritten).
    engine, bucket = started(tmp_path, {"old.txt": b"old"})
    stop_rcd.append(engine)
    bucket.put("repo/f3.txt", b"theirs", mtime=time.time() - 60)
    names = [f"repo/f{i}.txt" for i in range(12)]
    for rel in names:
        write(engine, rel, b"mine " + rel.encode())
    assert push(engine, *names).conflicts == 1
    assert bucket.files()["repo/f3.conflict1.txt"] == b"theirs"


def test_bisync_mode_counts_a_delete_the_watcher_tells_while_bisync_runs_as_seen(tmp_path, stop_rcd):
    # `rm first.txt b.txt`: the push of first.txt runs bisync, which lists the data folder without b.txt too,
    # and b.txt's event reaches the watcher (the change set) only while that run goes on. Two of three deleted
    # trips bisync's guard; b.txt is not unseen, so no union rebuild may bring both files back.
    told: set[str] = set()
    engine, bucket = local_engine(tmp_path, mode="bisync", pending_here=lambda: set(told))
    stop_rcd.append(engine)
    for rel in ("first.txt", "b.txt", "c.txt"):
        bucket.put(rel, rel.encode(), mtime=time.time() - 3600)
    engine.restore()
    engine.establish()
    (engine.data_dir / "first.txt").unlink()
    (engine.data_dir / "b.txt").unlink()
    run = engine.store.run

    def told_meanwhile(argv, what, **kwargs):
        told.add("b.txt")  # the watcher notes it while the run is under way
        return run(argv, what, **kwargs)

    engine.store.run = told_meanwhile
    push(engine, "first.txt")
    assert sorted(p.name for p in engine.data_dir.iterdir()) == ["c.txt"]
    assert bucket.files() == {"c.txt": b"c.txt"}
