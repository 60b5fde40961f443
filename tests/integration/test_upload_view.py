"""What an upload reads (local/upload_view.py): the file the push opened through real folders, whatever its
path names by the time rclone reads it; never a private file of the state directory. In-process, against
rclone's local backend (engine_local.py); the race through a real daemon on both S3 servers is in
test_link_swap.py."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from engine_local import local_engine, push, started, stop_rcd, write  # noqa: F401 - stop_rcd: a fixture
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.upload_view import UploadView

SECRET = b"secret_access_key = not-for-any-bucket\n"


def _secret_config(engine) -> None:
    with open(engine.state.config_path, "ab") as config:
        config.write(SECRET)


def _swap_for_link(engine, folder: str, target, tmp_path) -> None:
    """The folder moves out of the data folder and a link to `target` takes its name."""
    os.rename(engine.data_dir / folder, tmp_path / f"moved-{folder}")
    os.symlink(target, engine.data_dir / folder)


def _every_object(root) -> dict[str, bytes]:
    """Every object of the local bucket folder, the trash included."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_a_folder_swapped_for_a_link_between_the_look_and_the_upload_uploads_nothing_through_it(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"project/rclone.conf": b"mine, v1"})
    stop_rcd.append(engine)
    _secret_config(engine)
    write(engine, "project/rclone.conf", b"mine, v2")
    plan = engine.pusher.observe({"project/rclone.conf"})
    assert plan.uploads.upload == ["project/rclone.conf"]
    _swap_for_link(engine, "project", engine.state.path, tmp_path)  # project/rclone.conf: the private config now
    engine.pusher.execute(plan)
    objects = _every_object(bucket.root)
    assert not [name for name, content in objects.items() if SECRET in content]
    assert bucket.files()["project/rclone.conf"] == b"mine, v1"  # not uploaded: the folder's delete follows
    # The push of the swap (the watcher's events): the folder's file deleted (kept in the trash), the link saved.
    push(engine, "project")
    assert "project/rclone.conf" not in bucket.files()
    assert not [name for name, content in _every_object(bucket.root).items() if SECRET in content]


def test_the_view_reads_the_file_it_opened_whatever_the_path_names_later(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path)
    stop_rcd.append(engine)
    write(engine, "a/notes.txt", b"what the push looked at")
    with UploadView(engine.data_dir, engine.state.scratch()) as view:
        home = view.path.parent
        assert view.add("a/notes.txt")
        _swap_for_link(engine, "a", tmp_path / "elsewhere", tmp_path)
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "notes.txt").write_bytes(b"outside the data folder")
        engine.store.upload(view.path, view.files, follow_links=True)
    assert bucket.files() == {"a/notes.txt": b"what the push looked at"}
    assert not [n for n in os.listdir(home) if n.startswith("upload-")]  # gone with its upload


def test_a_hard_link_of_the_rclone_config_is_never_uploaded_and_is_listed_as_not_saved(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path, {"nb.ipynb": b"{}"})
    stop_rcd.append(engine)
    _secret_config(engine)
    os.link(engine.state.config_path, engine.data_dir / "config-copy.txt")
    write(engine, "other.txt", b"saved")
    push(engine, "config-copy.txt", "other.txt")
    assert bucket.files() == {"nb.ipynb": b"{}", "other.txt": b"saved"}
    assert "config-copy.txt" in engine.not_saved_shown()


def test_a_fifo_or_a_name_gone_meanwhile_is_not_read_and_the_rest_is_uploaded(tmp_path, stop_rcd):
    engine, bucket = started(tmp_path)
    stop_rcd.append(engine)
    write(engine, "keep.txt", b"kept")
    write(engine, "gone.txt", b"gone")
    plan = engine.pusher.observe({"keep.txt", "gone.txt"})
    os.unlink(engine.data_dir / "gone.txt")
    os.mkfifo(engine.data_dir / "gone.txt")  # reading it would block the upload for good
    engine.pusher.execute(plan)
    assert bucket.files() == {"keep.txt": b"kept"}


def test_the_large_lane_reads_the_file_it_opened(tmp_path, stop_rcd):
    engine, bucket = local_engine(tmp_path)
    stop_rcd.append(engine)
    engine.restore()
    engine.establish()
    _secret_config(engine)
    content = os.urandom(3 * 1024 * 1024)
    write(engine, "models/w.bin", content)
    upload = engine.large.start("models/w.bin")
    assert upload is not None
    _swap_for_link(engine, "models", engine.state.path, tmp_path)
    os.link(engine.state.config_path, engine.state.path / "w.bin")  # models/w.bin names the secret now
    upload.job.wait(60)
    upload.ended()
    engine.large.finish(upload)
    assert bucket.files()["models/w.bin"] == content
    assert not [name for name, data in _every_object(bucket.root).items() if SECRET in data]


class _FailsAfterUpload:
    """The engine's real store, whose first upload call lands and then reports what rclone says of a file that
    changed while it was read (one file of the batch failed; the others landed)."""

    def __init__(self, store, before=lambda: None):
        self.store = store
        self.before = before  # done once, before the first upload reads the files (after the push's look)
        self.failed = False

    def __getattr__(self, name):
        return getattr(self.store, name)

    def upload(self, *args, **kwargs):
        if not self.failed:
            self.before()
        self.store.upload(*args, **kwargs)
        if not self.failed:
            self.failed = True
            raise RcloneError("push failed: growing.log: Failed to copy: source file is being updated",
                              exit_code=None, retryable=True)


@pytest.mark.parametrize("changed", [False, True], ids=["as-looked-at", "changed-after-the-look"])
def test_a_file_of_a_failed_batch_that_landed_and_is_deleted_here_is_deleted_in_the_bucket(tmp_path, stop_rcd,
                                                                                           changed):
    """An SQLite journal landed in a batch whose other file changed while it was read; the journal is gone here
    before that file's next push. Unknown, its delete would leave it in the bucket, restored by every fresh
    container. The journal may also have changed between the push's look and the read (seen in test_workload)."""
    engine, bucket = started(tmp_path)
    stop_rcd.append(engine)
    rewrite = lambda: write(engine, "db.sqlite-journal", b"journal, longer now", mtime=1_700_000_000)  # noqa: E731
    failing = _FailsAfterUpload(engine.store, rewrite if changed else lambda: None)
    engine.pusher.transfers.store = failing
    write(engine, "db.sqlite-journal", b"journal")
    write(engine, "growing.log", b"line 1\n")
    with pytest.raises(RcloneError):
        push(engine, "db.sqlite-journal", "growing.log")
    assert failing.failed and set(bucket.files()) == {"db.sqlite-journal", "growing.log"}
    os.unlink(engine.data_dir / "db.sqlite-journal")
    push(engine, "db.sqlite-journal", "growing.log")
    assert set(bucket.files()) == {"growing.log"}


def test_a_large_upload_that_landed_before_the_lane_settled_it_is_no_change_from_elsewhere(tmp_path, stop_rcd):
    """The reconcile of a `sync --once` ran between a large upload landing and the lane asking its job: it took
    our own 12 MiB for a new object from elsewhere beside a file changed here, and downloaded it again as a
    conflict copy (on a nearly full disk: full; seen in test_disk_full under load)."""
    engine, bucket = local_engine(tmp_path)
    stop_rcd.append(engine)
    engine.restore()
    engine.establish()
    content = os.urandom(3 * 1024 * 1024)
    write(engine, "models/w.bin", content)
    upload = engine.large.start("models/w.bin")
    upload.job.wait(60)  # landed; the lane has not asked yet, the path is still pending in its lane
    engine.reconcile(lambda rel: rel == "models/w.bin")
    assert sorted(os.listdir(engine.data_dir / "models")) == ["w.bin"]
    upload.ended()
    engine.large.finish(upload)
    engine.reconcile()
    assert bucket.files() == {"models/w.bin": content}
    assert sorted(os.listdir(engine.data_dir / "models")) == ["w.bin"]


def test_a_view_left_by_a_killed_daemon_is_cleared_at_the_next_start_and_nothing_else(tmp_path):
    from rclone_jupyter.local.upload_view import clear_views

    view = UploadView(tmp_path / "data", tmp_path).open()  # as a SIGKILL leaves it: never closed
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    assert view.add("a.txt")
    (tmp_path / "upload-notes.txt").write_text("a file, not a view")
    clear_views(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["data", "upload-notes.txt"]
    assert (tmp_path / "data" / "a.txt").read_text() == "a"


def test_a_new_version_of_a_known_large_file_that_landed_before_the_lane_settled_it_is_no_change(tmp_path,
                                                                                               stop_rcd):
    """The same as a known file: its old version is in the baseline. Leaving its name out of the listing alone
    made the reconcile take it for deleted elsewhere, forget it and push it beside the lane's upload (a second
    upload of the file while the job runs, when the job had not landed yet)."""
    engine, bucket = local_engine(tmp_path)
    stop_rcd.append(engine)
    engine.restore()
    engine.establish()
    write(engine, "models/w.bin", os.urandom(3 * 1024 * 1024), mtime=1_700_000_000)
    first = engine.large.start("models/w.bin")
    first.job.wait(60)
    first.ended()
    engine.large.finish(first)
    newer = os.urandom(3 * 1024 * 1024 + 1)
    write(engine, "models/w.bin", newer)
    upload = engine.large.start("models/w.bin")
    plan, _listing, _seen = engine.reconciler.observe(lambda rel: rel == "models/w.bin", dry_run=True)
    assert not plan, plan  # landed or not yet: nothing to do about it while the lane has it
    upload.job.wait(60)
    engine.reconcile(lambda rel: rel == "models/w.bin")
    assert sorted(os.listdir(engine.data_dir / "models")) == ["w.bin"]
    upload.ended()
    engine.large.finish(upload)
    engine.reconcile()
    assert bucket.files() == {"models/w.bin": newer}
    assert sorted(os.listdir(engine.data_dir / "models")) == ["w.bin"]


def test_views_are_made_on_the_memory_filesystem_in_a_private_folder_of_the_process(tmp_path):
    from rclone_jupyter.local.upload_view import MEMORY_FS, _Home, _is_memory_fs

    if not _is_memory_fs(MEMORY_FS):
        pytest.skip(f"no tmpfs at {MEMORY_FS} here")
    home = _Home()
    folder = home.folder(tmp_path)
    try:
        assert folder.parent == Path(MEMORY_FS) and str(os.getpid()) in folder.name
        assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700
        home.full(folder / "upload-1")  # a view there could not take another link
        assert home.folder(tmp_path) == tmp_path  # new views go to the state directory from then on
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_without_a_memory_filesystem_the_views_are_in_the_state_directory_and_the_push_lands(tmp_path,
                                                                                            stop_rcd, monkeypatch):
    from rclone_jupyter.local import upload_view

    not_tmpfs = tmp_path / "not-a-mount"
    not_tmpfs.mkdir()
    monkeypatch.setattr(upload_view, "views_home", upload_view._Home(memory_fs=str(not_tmpfs)))
    engine, bucket = started(tmp_path)
    stop_rcd.append(engine)
    with UploadView(engine.data_dir, engine.state.scratch()) as view:
        assert view.path.parent == engine.state.scratch()
    write(engine, "nb.ipynb", b"{}")
    push(engine, "nb.ipynb")
    assert bucket.files() == {"nb.ipynb": b"{}"}
    assert os.listdir(not_tmpfs) == []
