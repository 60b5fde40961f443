"""A background job is known by the rcd that runs it (issue 16): a new rcd, started after the old one died,
numbers its jobs from 1 again, so an old job id there names some other call's job. Its success must never read
as the lost transfer's: the large lane would count a file as saved that never reached the bucket (this happened
when the tests killed the rcd mid-upload, test_faults' test_02)."""

from __future__ import annotations

import time

from engine_local import local_engine


def test_a_job_of_a_dead_rcd_is_a_failed_one(tmp_path):
    engine, _bucket = local_engine(tmp_path)
    engine.data_dir.mkdir()
    store = engine.store
    try:
        (engine.data_dir / "big.bin").write_bytes(b"x" * 4096)
        job = store.start_upload(engine.data_dir, "big.bin")
        job.wait(timeout=60)
        assert job.status()["success"] is True

        engine.rclone.rcd.kill()
        deadline = time.monotonic() + 10
        while engine.rclone.rcd.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        # The next calls start a new rcd; enough of them that the old job's id names one of them there.
        for _ in range(job.id + 1):
            store.rc(("rc/noop", {}), "a call")
        status = job.status()
        assert status["finished"] is True and status["success"] is False, status
    finally:
        engine.rclone.close()
