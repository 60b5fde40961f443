"""The trash's store verbs and TrashFolder (engine/trash.py) with a real rclone against a real folder
(rclone's local backend): fast, in-process, no storage server."""

from __future__ import annotations

import os
import stat
import time

import pytest

from engine_local import local_engine, push, started, write
from rclone_jupyter.engine.trash import TrashFolder
from rclone_jupyter.model import trash
from rclone_jupyter.model.trash import DELETED, REPLACED, Kept

S = 1_000_000_000


@pytest.fixture
def setup(tmp_path):
    engine, bucket = local_engine(tmp_path)
    engine.data_dir.mkdir()
    yield engine, bucket
    engine.rclone.close()


def test_copy_many_copies_into_a_folder_and_back_under_the_same_names(setup):
    engine, bucket = setup
    bucket.put("a.txt", b"a")
    bucket.put("d/b.txt", b"b")
    engine.store.copy_many(["a.txt", "d/b.txt"], "", "kept/one")
    assert (bucket.root / "kept/one/d/b.txt").read_bytes() == b"b"
    bucket.delete("d/b.txt")
    engine.store.copy_many(["d/b.txt"], "kept/one", "")
    assert (bucket.root / "d/b.txt").read_bytes() == b"b"


def test_sizes_lists_every_object_under_a_folder_and_a_missing_folder_is_empty(setup):
    engine, bucket = setup
    bucket.put("kept/x/a.txt", b"abc")
    bucket.put("kept/b.txt", b"")
    assert engine.store.sizes("kept") == {"kept/x/a.txt": 3, "kept/b.txt": 0}
    assert engine.store.sizes("nothing-here") == {}


def test_keep_lists_and_expires_through_the_trash_folder(setup):
    engine, bucket = setup
    folder = TrashFolder(engine.store, str(bucket.root))
    bucket.put("a.txt", b"a")
    bucket.put("b.txt", b"bb")
    now = time.time_ns()
    folder.keep([Kept(now - 8 * 86_400 * S, "a.txt", DELETED, 0o644), Kept(now, "b.txt", REPLACED, 0o755)])
    assert sorted((v.key, v.kind, v.mode, v.size) for v in folder.versions()) == [
        ("a.txt", DELETED, 0o644, 1), ("b.txt", REPLACED, 0o755, 2)]
    assert folder.expire(folder.versions(), now, 7) == 1
    assert [v.key for v in folder.versions()] == ["b.txt"]


def test_a_push_keeps_the_replaced_version_with_the_mode_it_had(tmp_path):
    engine, bucket = started(tmp_path, {"run.sh": b"old"})
    try:
        os.chmod(engine.data_dir / "run.sh", 0o755)
        push(engine, "run.sh")  # a chmod alone: a manifest change, nothing replaced
        assert engine.keeper.folder.versions() == []
        write(engine, "run.sh", b"new")
        os.chmod(engine.data_dir / "run.sh", 0o700)
        push(engine, "run.sh")
        (kept,) = engine.keeper.folder.versions()
        assert (kept.key, kept.kind, kept.mode) == ("run.sh", REPLACED, 0o755)  # the replaced one's, not 0700
        assert (bucket.root / trash.TRASH / kept.name).read_bytes() == b"old"
    finally:
        engine.rclone.close()


def test_a_recover_into_the_data_folder_goes_through_no_link(tmp_path):
    engine, bucket = started(tmp_path, {"d/a.txt": b"a"})
    try:
        os.remove(engine.data_dir / "d/a.txt")
        push(engine, "d/a.txt")
        (engine.data_dir / "d").rmdir()
        outside = tmp_path / "outside"
        outside.mkdir()
        os.symlink(outside, engine.data_dir / "d")  # the folder is a link now
        folder = engine.keeper.folder
        steps = trash.recover_plan(folder.versions(), "d/a.txt", exists=lambda _rel: False)
        assert folder.recover_into(engine.data_dir, steps) == []
        assert list(outside.iterdir()) == []
        assert stat.S_ISLNK(os.lstat(engine.data_dir / "d").st_mode)
    finally:
        engine.rclone.close()
