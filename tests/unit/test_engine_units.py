"""Pure parts of the engine: the reconcile plan (one test per rule), names, placing files, the debouncer."""

from __future__ import annotations

import os

import pytest

from rclone_jupyter.model.debounce import Debouncer
from rclone_jupyter.engine.bucket import new_folders_of as _new_folders
from rclone_jupyter.local.tree import place, unrepresentable, walk_versions
from rclone_jupyter.model.known import Known, decode_name, encode_name, key_of, local_version, under_link
from rclone_jupyter.model.reconcile_plan import plan

V1, V2 = (10, 1_000_000_000_000), (12, 2_000_000_000_000)
L1, L2 = (10, 5_000), (12, 6_000)  # listing stamps (size, server time)


def run(known, listing, local=None, changed=()):
    local = local if local is not None else {k: v.version for k, v in known.items()}
    return plan(known, listing, local.get, lambda key: key in changed)


# -- reconcile.plan: the table in its docstring ------------------------------------------------------------


def test_nothing_changed_anywhere_is_an_empty_plan():
    p = run({"a": Known(*V1, L1)}, {"a": L1})
    assert not p and not p.adopt


def test_our_own_upload_is_adopted_when_listed_with_its_size():
    p = run({"a": Known(*V1, None)}, {"a": (10, 9_999)})
    assert p.adopt == {"a": (10, 9_999)} and not p


def test_our_upload_listed_with_another_size_is_a_change_elsewhere():
    p = run({"a": Known(*V1, None)}, {"a": (11, 9_999)})
    assert p.pull == ["a"]


def test_added_elsewhere_is_pulled():
    assert run({}, {"new": L1}, local={}).pull == ["new"]


def test_changed_elsewhere_and_untouched_here_is_pulled():
    assert run({"a": Known(*V1, L1)}, {"a": L2}).pull == ["a"]


def test_changed_on_both_sides_keeps_both():
    p = run({"a": Known(*V1, L1)}, {"a": L2}, local={"a": V2}, changed={"a"})
    assert p.keep_both == ["a"] and not p.pull


def test_a_local_edit_the_watcher_has_not_reported_yet_still_counts_as_changed_here():
    p = run({"a": Known(*V1, L1)}, {"a": L2}, local={"a": V2})
    assert p.keep_both == ["a"]


def test_added_on_both_sides_keeps_both():
    p = run({}, {"a": L1}, local={"a": V2}, changed={"a"})
    assert p.keep_both == ["a"]


def test_changed_elsewhere_but_deleted_here_brings_the_newer_work_back():
    p = run({"a": Known(*V1, L1)}, {"a": L2}, local={}, changed={"a"})
    assert p.pull == ["a"]


def test_deleted_elsewhere_and_untouched_here_is_deleted_here():
    known = {k: Known(*V1, L1) for k in "abcde"}
    p = run(known, {k: L1 for k in "bcde"})
    assert p.delete_here == ["a"] and not p.disappeared


def test_deleted_elsewhere_but_changed_here_is_pushed_again():
    p = run({"a": Known(*V1, L1), "b": Known(*V1, L1)}, {"b": L1}, local={"a": V2, "b": V1}, changed={"a"})
    assert p.push == ["a"] and not p.delete_here


def test_deleted_on_both_sides_is_forgotten():
    p = run({"a": Known(*V1, L1), "b": Known(*V1, L1)}, {"b": L1}, local={"b": V1}, changed={"a"})
    assert p.forget == ["a"]


def test_a_queued_delete_here_is_never_resurrected_by_a_reconcile():
    # The user deleted `a`; the push is still queued when the periodic look runs: the bucket did not change,
    # so the look does nothing (it must not pull `a` back).
    p = run({"a": Known(*V1, L1)}, {"a": L1}, local={}, changed={"a"})
    assert not p


def test_a_name_this_container_is_moving_itself_is_left_alone_whatever_the_listing_shows():
    # A large upload still running (known from before, landed or not yet) and a large file still to come.
    known = {"big": Known(*V1, L1), "other": Known(*V1, L1)}
    listing = {"other": L1, "coming": L1}
    assert not plan(known, listing, {"big": V2, "other": V1}.get, lambda key: key == "big",
                    leave=frozenset({"big", "coming"}))
    assert not plan(known, {**listing, "big": L2}, {"big": V2, "other": V1}.get, lambda key: key == "big",
                    leave=frozenset({"big", "coming"}))


def test_an_emptied_bucket_folder_deletes_nothing_here():
    known = {"only": Known(*V1, L1)}
    p = run(known, {})
    assert p.disappeared == ["only"] and p.push == ["only"] and not p.delete_here


def test_more_than_half_deleted_elsewhere_is_an_accident_not_a_decision():
    known = {k: Known(*V1, L1) for k in "abcde"}
    p = run(known, {"e": L1})
    assert sorted(p.disappeared) == ["a", "b", "c", "d"] and not p.delete_here


# -- names and places ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, key", [
    ("plain/x.txt", "plain/x.txt"),
    ("a\nb", "a\u240ab"),  # as rclone's local backend names it: fits a one-name-per-line list
    ("c\x7fd", "c\u2421d"),
    ("g\u240ah", "g\u201b\u240ah"),  # a literal picture character is quoted
    ("\u201bq", "\u201b\u201bq"),
])
def test_names_are_encoded_as_rclone_does(name, key):
    assert encode_name(name) == key and decode_name(key) == name


@pytest.mark.parametrize("key, why", [
    ("a/../b", "'..'"), ("./a", "'.'"), ("a//b", "empty"), ("x" * 256, "255 bytes"), ("ok/name.txt", None),
    ("a/\uff0e\uff0e/b", "'..'"),  # rclone shows a key's ".." part as fullwidth dots
])
def test_unrepresentable_names(key, why):
    found = unrepresentable(key)
    assert (found is None) if why is None else (why in found)


def test_links_are_link_objects_and_never_followed(tmp_path):
    root = tmp_path / "data"
    (root / "d").mkdir(parents=True)
    (root / "d/f.txt").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/secret").write_text("s")
    os.symlink(tmp_path / "outside", root / "out")
    os.symlink("f.txt", root / "d/lnk")
    assert key_of(root, "d/lnk") == "d/lnk.rclonelink"
    assert local_version(root, "d/lnk.rclonelink")[0] == len("f.txt")
    assert sorted(walk_versions(root)) == ["d/f.txt", "d/lnk.rclonelink", "out.rclonelink"]
    assert under_link(root, "out/secret") and not under_link(root, "d/f.txt")


def test_place_never_writes_through_a_link(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "lnk")
    staged = tmp_path / "staged"
    staged.write_text("payload")
    assert not place(root, staged, "lnk/pwned.txt")
    assert not place(root, staged, "lnk/deeper/pwned.txt")
    assert os.listdir(tmp_path / "elsewhere") == []
    (root / "adir").mkdir()
    assert not place(root, staged, "adir")  # a folder is never replaced by a file
    assert place(root, staged, "new/folder/file.txt")
    assert (root / "new/folder/file.txt").read_text() == "payload"


def test_many_new_names_are_checked_by_folder():
    known = {"old/a.txt": Known(1, 1)}
    keys = [f"repo/.git/objects/{i:02x}/obj" for i in range(20)] + ["old/b.txt", "top.txt"]
    folders, rest = _new_folders(keys, known)
    assert folders == ["repo"] and sorted(rest) == ["old/b.txt", "top.txt"]


# -- debounce: a finished save needs no quiet period --------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_closed_file_is_due_at_once_and_an_open_one_after_the_quiet_period():
    clock = Clock()
    d = Debouncer(1.0, 10.0, clock, settle=0.05)
    d.note("nb.ipynb", finished=False)  # being written
    assert d.due_at() == pytest.approx(101.0)
    d.note("nb.ipynb", finished=True)  # closed
    assert d.due_at() == pytest.approx(100.05)


def test_a_file_closed_again_soon_after_its_upload_waits_the_quiet_period():
    clock = Clock()
    d = Debouncer(1.0, 10.0, clock, settle=0.05)
    d.note("train.log", finished=True)
    clock.now = 100.05
    assert d.is_due()
    d.reset()  # a run took it
    clock.now = 100.2
    d.note("train.log", finished=True)  # the next line, written and closed
    assert d.due_at() == pytest.approx(101.2)  # at most one upload per quiet period for a growing file
    clock.now = 102.0
    d.reset()
    clock.now = 103.5
    d.note("train.log", finished=True)  # long after: fast again
    assert d.due_at() == pytest.approx(103.55)


def test_a_burst_with_an_unknown_change_waits_the_quiet_period():
    clock = Clock()
    d = Debouncer(1.0, 10.0, clock)
    d.note()  # the watcher lost track
    d.note("a", finished=True)
    assert d.due_at() == pytest.approx(101.0)


def test_max_delay_still_bounds_a_file_that_never_stops_changing():
    clock = Clock()
    d = Debouncer(1.0, 3.0, clock)
    for step in range(10):
        clock.now = 100.0 + step * 0.5
        d.note("grow", finished=False)
    assert d.due_at() == pytest.approx(103.0)
