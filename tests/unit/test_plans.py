"""The push's and the conflict's pure planners (model/push_plan.py, model/conflict_plan.py): one test per rule
of their tables. The reconcile's planner has its own in test_engine_units.py."""

from __future__ import annotations

from rclone_jupyter.model.conflict_plan import Winner, keep_both
from rclone_jupyter.model.known import MTIME_SLACK_NS, Known, Version, dated_between
from rclone_jupyter.model.push_plan import plan_deletes, plan_uploads, to_check

OLD, NEW = Version(10, 1_000_000_000_000), Version(12, 2_000_000_000_000)
OTHER = Version(11, 3_000_000_000_000)


# -- which names a push asks the bucket about ---------------------------------------------------------------


def test_a_name_gone_here_is_not_uploaded():
    assert to_check({"a": None}, {"a": Known(*OLD)}) == []


def test_a_name_as_the_bucket_was_known_to_hold_it_is_skipped():
    assert to_check({"a": OLD}, {"a": Known(*OLD)}) == []


def test_a_changed_or_new_name_is_checked():
    assert to_check({"a": NEW, "b": OLD}, {"a": Known(*OLD)}) == ["a", "b"]


# -- what to do with each checked name ----------------------------------------------------------------------


def test_already_in_the_bucket_as_here_is_recorded_not_uploaded():
    p = plan_uploads({"a": NEW}, {"a": Known(*OLD)}, {"a": NEW})
    assert p.record == {"a": NEW} and not p.upload and not p.conflicts


def test_the_bucket_as_known_is_uploaded():
    p = plan_uploads({"a": NEW}, {"a": Known(*OLD)}, {"a": OLD})
    assert p.upload == ["a"] and not p.conflicts


def test_absent_and_not_known_is_uploaded():
    assert plan_uploads({"new": NEW}, {}, {}).upload == ["new"]


def test_changed_in_the_bucket_since_known_is_a_conflict():
    p = plan_uploads({"a": NEW}, {"a": Known(*OLD)}, {"a": OTHER})
    assert p.conflicts == {"a": OTHER} and not p.upload


def test_created_in_the_bucket_meanwhile_is_a_conflict():
    p = plan_uploads({"a": NEW}, {}, {"a": OTHER})
    assert p.conflicts == {"a": OTHER} and not p.upload


def test_deleted_in_the_bucket_since_known_is_uploaded_again():
    assert plan_uploads({"a": NEW}, {"a": Known(*OLD)}, {}).upload == ["a"]


# -- deletes --------------------------------------------------------------------------------------------------


def test_a_delete_removes_the_version_we_knew():
    p = plan_deletes(["a"], {"a": Known(*OLD)}, {"a": OLD})
    assert p.delete == ["a"] and not p.bring_back and not p.forget


def test_a_delete_of_a_version_changed_in_the_bucket_brings_it_back():
    p = plan_deletes(["a"], {"a": Known(*OLD)}, {"a": OTHER})
    assert p.bring_back == ["a"] and not p.delete


def test_a_delete_of_what_is_gone_from_the_bucket_already_is_forgotten():
    p = plan_deletes(["a"], {"a": Known(*OLD)}, {})
    assert p.forget == ["a"] and not p.delete


def test_a_delete_of_a_name_never_known_whose_object_is_there_brings_it_back():
    """An upload whose landing is unknown found an object that is not ours (Transfers.known_with_own left it
    out): made elsewhere, it is not deleted."""
    p = plan_deletes(["a"], {}, {"a": OTHER})
    assert p.bring_back == ["a"] and not p.delete


def test_a_whole_second_stamp_counts_from_the_start_of_the_attempt_s_second():
    attempt = 1_700_000_000_750_000_000  # the file's time at the attempt; the store kept whole seconds
    assert dated_between(Version(1, 1_700_000_000_000_000_000), attempt, attempt + 10**9)
    assert not dated_between(Version(1, 1_699_999_999_000_000_000), attempt, attempt + 10**9)
    assert not dated_between(Version(1, 1_700_000_000_500_000_000), attempt, attempt + 10**9)  # not whole: exact
    assert dated_between(Version(1, attempt + 10**9 + MTIME_SLACK_NS), attempt, attempt + 10**9)
    assert not dated_between(Version(1, attempt + 2 * 10**9), attempt, attempt + 10**9)


# -- who keeps the name --------------------------------------------------------------------------------------


def test_the_bucket_s_newer_version_keeps_the_name():
    step = keep_both("nb.ipynb", "nb.ipynb", OLD, NEW, "nb.conflict1.ipynb")
    assert step.winner is Winner.BUCKET and step.aside == "nb.conflict1.ipynb"


def test_the_newer_version_here_keeps_the_name():
    assert keep_both("a", "a", NEW, OLD, "a.conflict1").winner is Winner.HERE


def test_equal_times_keep_the_version_here_at_the_name():
    theirs = Version(99, OLD.mtime_ns + MTIME_SLACK_NS)  # within the slack: as new, not newer
    assert keep_both("a", "a", OLD, theirs, "a.conflict1").winner is Winner.HERE


def test_a_version_gone_here_leaves_the_bucket_s_as_the_only_one():
    step = keep_both("a", "a", None, NEW, "a.conflict1")
    assert step.winner is Winner.ONLY_BUCKET and step.aside == ""


# -- reconcile_plan.within_room: what a look downloads on a disk short of room --------------------------------

def test_within_room_takes_the_smallest_first_and_leaves_what_does_not_fit():
    from rclone_jupyter.model.reconcile_plan import within_room

    sizes = {"model.bin": 700, "a.py": 10, "b.ipynb": 90, "data.csv": 300}
    assert within_room(sizes, 400) == (["a.py", "b.ipynb", "data.csv"], ["model.bin"])
    assert within_room(sizes, 10_000) == (["a.py", "b.ipynb", "data.csv", "model.bin"], [])
    assert within_room(sizes, -5) == ([], ["a.py", "b.ipynb", "data.csv", "model.bin"])
    assert within_room({"empty.txt": 0}, 0) == (["empty.txt"], [])
