"""The store's verbs (rclone/store.py) with a real rclone against a real folder (rclone's local backend):
what engine/store.py promises for each, including the server-side copy and the background transfer."""

from __future__ import annotations

import time

import pytest

from conftest import wait_until
from engine_local import local_engine
from rclone_jupyter.engine.store import Job, Store
from rclone_jupyter.errors import RcloneError


@pytest.fixture
def setup(tmp_path):
    engine, bucket = local_engine(tmp_path)
    engine.data_dir.mkdir()
    yield engine.store, bucket, engine.data_dir
    engine.rclone.close()


def test_the_rclone_store_is_a_store_and_its_jobs_are_jobs(setup):
    store, _, data = setup
    assert isinstance(store, Store)
    (data / "f").write_bytes(b"f")
    job = store.start_upload(data, "f")
    assert isinstance(job, Job)
    job.wait(timeout=60)


def test_upload_stat_list_download_delete(setup, tmp_path):
    store, bucket, data = setup
    (data / "d").mkdir()
    (data / "d/a.txt").write_bytes(b"aaa")
    (data / "b.txt").write_bytes(b"b")
    store.upload(data, ["d/a.txt", "b.txt"])
    assert bucket.files() == {"d/a.txt": b"aaa", "b.txt": b"b"}
    assert {k: v.size for k, v in store.stat(["d/a.txt", "missing.txt"]).items()} == {"d/a.txt": 3}
    assert store.stat(["d/a.txt"])["d/a.txt"].mtime_ns // 1_000_000 == (data / "d/a.txt").stat().st_mtime_ns // 1_000_000
    assert sorted(store.list()) == ["b.txt", "d/a.txt"] and sorted(store.list("d")) == ["d/a.txt"]
    staging = tmp_path / "staging"
    staging.mkdir()
    store.download(["d/a.txt"], staging)
    assert (staging / "d/a.txt").read_bytes() == b"aaa"
    store.delete(["d/a.txt"])
    assert bucket.files() == {"b.txt": b"b"}


def test_a_missing_folder_lists_empty_or_raises_when_asked(tmp_path):
    engine, bucket = local_engine(tmp_path)
    bucket.root.rmdir()
    assert engine.store.list() == {}
    with pytest.raises(RcloneError):
        engine.store.list(missing_ok=False)


def test_read_and_write_one_small_object(setup):
    store, bucket, _ = setup
    assert store.read("notes/x.json", "reading") is None
    store.write("notes/x.json", '{"a": 1}', "writing")
    assert store.read("notes/x.json", "reading") == '{"a": 1}'
    assert (bucket.root / "notes/x.json").read_text() == '{"a": 1}'


def test_a_server_side_copy_keeps_the_original(setup):
    store, bucket, _ = setup
    bucket.put("nb.ipynb", b"version 1")
    store.copy("nb.ipynb", ".versions/nb.ipynb.1")
    assert bucket.files() == {"nb.ipynb": b"version 1", ".versions/nb.ipynb.1": b"version 1"}


def test_a_background_upload_and_download_report_progress_and_land(setup, tmp_path):
    store, bucket, data = setup
    payload = bytes(range(256)) * 4096  # 1 MiB
    (data / "big.bin").write_bytes(payload)
    job = store.start_upload(data, "big.bin")
    assert isinstance(job.id, int)
    job.wait(timeout=60)
    done, total = job.progress()
    assert done == total == len(payload)
    assert bucket.files() == {"big.bin": payload}
    into = tmp_path / "incoming"
    into.mkdir()
    back = store.start_download("big.bin", into)
    back.wait(timeout=60)
    assert (into / "big.bin").read_bytes() == payload


def test_a_failed_background_job_raises_on_wait(setup):
    store, _, data = setup
    job = store.start_upload(data, "not-there.bin")
    with pytest.raises(RcloneError, match="not-there.bin"):
        job.wait(timeout=60)


def test_a_running_background_job_holds_the_rcd_until_it_is_waited_for(setup):
    store, bucket, data = setup
    rcd = store.rclone.rcd
    rcd.idle_seconds = 0.2
    (data / "big.bin").write_bytes(b"x" * 1024)
    job = store.start_upload(data, "big.bin")
    proc = rcd._proc
    # No call from us for several idle periods: without the hold, the rcd (and the transfer) would be stopped.
    time.sleep(rcd.idle_seconds * 5)
    assert proc.poll() is None
    job.wait(timeout=60)
    assert bucket.files() == {"big.bin": b"x" * 1024}
    wait_until(lambda: proc.poll() is not None, timeout=10, message="the idle rcd to stop once the job is done")
