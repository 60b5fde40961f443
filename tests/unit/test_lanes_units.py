"""The lanes' pure parts (issue 16): which files go to the large lane, the wait after a cut-short attempt, the
order of the final flush, and the change set's bookkeeping of a file in the large lane."""

from __future__ import annotations

from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.model.lanes import LARGE, SHARE, is_large, retry_after, smallest_first
from rclone_jupyter.rclone.rcd import changed_while_read, error_level


def test_large_is_a_size_threshold():
    assert not is_large(None) and not is_large(0) and not is_large(LARGE - 1)
    assert is_large(LARGE) and is_large(10 * LARGE)


def test_the_wait_after_a_cut_short_attempt_grows_with_its_cost():
    assert retry_after(100.0, 2.0) == 100.0 + SHARE * 2.0
    assert retry_after(100.0, 0.0) == 100.0  # a small log's attempt costs milliseconds: no real wait
    assert retry_after(100.0, -1.0) == 100.0  # a clock step back never makes it wait longer


def test_the_flush_takes_the_smallest_first():
    assert smallest_first({"big.bin": 5_000, "a.ipynb": 10, "b.ipynb": 10, "c.py": 200}) == \
        ["a.ipynb", "b.ipynb", "c.py", "big.bin"]


def test_a_file_in_the_large_lane_is_pending_until_its_job_landed():
    changes = ChangeSet()
    changes.add("big.bin")
    changes.add("nb.ipynb")
    changes.take_one("big.bin")
    batch = changes.take(leave={"big.bin"})
    assert batch.paths == {"nb.ipynb"}
    assert changes.pending() == {"big.bin", "nb.ipynb"}
    changes.done()  # the small lane's batch landed; the large file is still on its way
    assert changes.pending() == {"big.bin"} and changes.oldest() is not None
    changes.finish_one("big.bin", durable=True)
    assert changes.pending() == set() and changes.oldest() is None


def test_a_stopped_or_failed_job_queues_its_file_again():
    changes = ChangeSet()
    changes.add("big.bin")
    changes.take_one("big.bin")
    assert not changes.has_queued()
    changes.finish_one("big.bin", durable=False)
    assert changes.queued() == {"big.bin"} and changes.pending() == {"big.bin"}


def test_a_newer_version_queued_meanwhile_stays_pending_when_the_old_one_lands():
    changes = ChangeSet()
    changes.add("big.bin")
    changes.take_one("big.bin")
    changes.add("big.bin")  # written again while its upload runs
    changes.finish_one("big.bin", durable=True)
    assert changes.pending() == {"big.bin"} and changes.oldest() is not None


def test_rclone_errors_for_a_file_being_written_or_an_upload_we_stopped_are_not_warnings():
    import logging

    assert changed_while_read("Failed to copy: can't copy - source file is being updated (size changed from 1 to 2)")
    assert changed_while_read("run.log: corrupted on transfer: md5 hashes differ src(x) \"a\" vs dst \"b\"")
    assert error_level("big.bin: Failed to copy: operation error S3: PutObject, canceled, context canceled") \
        == logging.DEBUG
    assert error_level("run.log: corrupted on transfer: md5 hashes differ") == logging.INFO
    assert error_level("Failed to copy: AccessDenied") == logging.WARNING


def test_new_folders_side_by_side_are_listed_once_through_their_parent():
    from rclone_jupyter.engine.bucket import new_folders_of, siblings_listed_once
    from rclone_jupyter.model.known import Known

    site = "venv/lib/site-packages"
    known = {f"{site}/existing.py": Known(1, 1, None)}
    keys = [f"{site}/pkg{i}/mod{j}.py" for i in range(5) for j in range(3)]
    folders, rest = new_folders_of(keys, known)
    assert folders == [site] and rest == []  # one listing, not five
    assert siblings_listed_once(["a/x", "a/y"]) == {"a/x", "a/y"}  # a few: each on its own
    assert siblings_listed_once(["p", "q", "r", "s"]) == {"p", "q", "r", "s"}  # never the whole folder's root
