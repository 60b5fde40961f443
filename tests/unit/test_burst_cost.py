"""A burst of new files costs linear time (issue: 100,000 new files once took about an hour of CPU).

The structural properties, with a fake clock: the status file is written a bounded number of times per
second however many events arrive, and the pending set is read only when it is written. The CPU figures
are measured by bench/burst.py, not asserted here.
"""

from __future__ import annotations

import json
import random

import pytest

import rclone_jupyter.daemon.status as status
import rclone_jupyter.model.changes as changes_module
from rclone_jupyter.daemon.status import StatusBoard
from rclone_jupyter.daemon.syncer import RESCAN, ShownPending
from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.model.debounce import Debouncer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Timers:
    """The deferred writes the board asks for, run when the test says their time has come."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.waiting = clock, []

    def __call__(self, delay: float, function) -> None:
        self.waiting.append((self.clock.now + delay, function))

    def run_due(self) -> None:
        due = [f for at, f in self.waiting if at <= self.clock.now]
        self.waiting = [(at, f) for at, f in self.waiting if at > self.clock.now]
        for function in due:
            function()


def test_a_burst_of_events_writes_the_status_a_few_times_a_second_and_the_last_state_lands(tmp_path, monkeypatch):
    writes = []
    real_write = status.write_json
    monkeypatch.setattr(status, "write_json", lambda path, data: (writes.append(data), real_write(path, data)))
    clock = Clock()
    timers = Timers(clock)
    board = StatusBoard(tmp_path / "status.json", {"s3": "s3://b/f"}, persistent=True, clock=clock, timer=timers,
                        min_interval=0.25)
    changes = ChangeSet()
    reads, oldest_reads = [], []

    def pending():
        reads.append(1)
        return changes.pending()

    def oldest():
        oldest_reads.append(1)
        return "2026-12-03T10:00:00Z"

    writes.clear()
    for n in range(10_000):  # 10,000 new files over 10 s of the fake clock
        changes.add(f"unpacked/{n:05d}.txt")
        board.remote("s3", pending=pending, oldest_pending=oldest)
        clock.now += 0.001
        timers.run_due()
    clock.now += 1
    timers.run_due()
    assert len(writes) <= 10 / 0.25 + 2, len(writes)  # 4 a second at most, not one per event
    assert len(reads) == len(writes)  # the pending set is read when written, not at each event
    assert len(oldest_reads) == len(writes)  # and so is any field given as a function
    last = json.loads((tmp_path / "status.json").read_text())
    assert last["remotes"]["s3"]["pending"] == 10_000 and last["pending"] == 10_000  # the last state landed
    assert last["remotes"]["s3"]["oldest_pending"] == "2026-12-03T10:00:00Z"
    assert last["pending_paths"][:2] == ["unpacked/00000.txt", "unpacked/00001.txt"]
    assert len(last["pending_paths"]) == status.MAX_LISTED


def test_a_phase_change_is_written_at_once_and_cancels_the_deferred_write(tmp_path, monkeypatch):
    writes = []
    real_write = status.write_json
    monkeypatch.setattr(status, "write_json", lambda path, data: (writes.append(data), real_write(path, data)))
    clock = Clock()
    timers = Timers(clock)
    board = StatusBoard(tmp_path / "status.json", {"s3": "s3://b/f"}, persistent=True, clock=clock, timer=timers)
    clock.now += 1
    board.remote("s3", pending={"a"})  # the last write was a second ago: written at once
    board.remote("s3", pending={"a", "b"})  # within the interval: deferred
    assert writes[-1]["pending"] == 1 and len(timers.waiting) == 1
    board.set(phase="stopped")  # written at once, with everything
    assert writes[-1]["phase"] == "stopped" and writes[-1]["pending"] == 2
    count = len(writes)
    clock.now += 1
    timers.run_due()
    assert len(writes) == count  # nothing left to write


def test_the_oldest_pending_change_is_the_first_one_still_pending(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(changes_module, "time", type("FakeTime", (), {"time": staticmethod(clock)}))
    changes = ChangeSet()
    for rel in ("a", "b", "c"):
        changes.add(rel)
        clock.now += 1
    assert changes.oldest() == 100.0
    changes.take()
    changes.add("a")  # changed again while in flight: its oldest change is still the first one
    changes.put_back({"b"})  # only b failed; c is durable
    assert changes.pending() == {"a", "b"} and changes.oldest() == 100.0
    changes.take()
    changes.done()
    assert changes.oldest() is None
    changes.add("d")
    assert changes.oldest() == 103.0


def test_the_debouncer_still_waits_the_quiet_period_for_a_path_taken_lately_in_a_big_burst():
    clock = Clock()
    debouncer = Debouncer(1.0, 10.0, clock, settle=0.05)
    debouncer.note("log.txt", finished=True)
    clock.now += 0.05
    assert debouncer.is_due()
    debouncer.reset()  # a run took log.txt
    for n in range(1000):
        debouncer.note(f"new/{n}", finished=True)
    debouncer.note("log.txt", finished=True)  # written again right after its upload
    clock.now += 0.05
    assert not debouncer.is_due()  # the quiet period, because log.txt was taken 0.05 s ago
    clock.now += 1.0
    assert debouncer.is_due()


def test_the_change_sets_count_and_oldest_paths_are_its_pending_paths_after_any_sequence_of_operations():
    """The status reads a remote's count and listed paths from the order of first changes (O(listed)): that
    order must hold exactly the pending paths, or the status would call unsaved changes saved."""
    rng = random.Random(18)
    changes = ChangeSet()
    names = [f"p{n}" for n in range(12)]
    in_flight, in_lane = False, set()  # as the syncer uses it: one batch in flight at a time
    for step in range(5000):
        op = rng.choice(["add", "add", "take", "done", "put_back", "take_one", "finish_one"])
        queued = changes.queued()
        if op == "add":
            changes.add(rng.choice(names))
        elif op == "take" and not in_flight:
            changes.take(leave=set(rng.sample(names, 3)))
            in_flight = True
        elif op == "done" and in_flight:
            changes.done()
            in_flight = False
        elif op == "put_back" and in_flight:
            changes.put_back(set(rng.sample(names, 2)) if rng.random() < 0.5 else None)
            in_flight = False
        elif op == "take_one" and queued - in_lane:
            rel = rng.choice(sorted(queued - in_lane))
            changes.take_one(rel)
            in_lane.add(rel)
        elif op == "finish_one" and in_lane:
            rel = rng.choice(sorted(in_lane))
            changes.finish_one(rel, durable=rng.random() < 0.5)
            in_lane.discard(rel)
        pending = changes.pending()
        assert changes.count() == len(pending), (step, op)
        assert set(changes.oldest_paths(len(names) + 1)) == pending, (step, op)


def test_a_status_write_in_a_burst_reads_the_count_and_the_first_paths_not_every_pending_path(tmp_path, monkeypatch):
    """A write cost O(pending) (a union of the sets, then the 50 smallest names twice): 3.7 of the 9 s of CPU of
    a 100,000-file burst (bench/burst_cpu.py). The paths that waited longest are listed, oldest first."""
    changes = ChangeSet()
    for n in range(1000):
        changes.add(f"unpacked/{999 - n:04d}.txt")  # the newest have the smallest names
    changes.take()
    changes.add("later.txt")
    full_reads = []
    monkeypatch.setattr(ChangeSet, "pending", lambda self: full_reads.append(1) or set())
    board = StatusBoard(tmp_path / "status.json", {"s3": "s3://b/f"}, persistent=True)
    board.remote("s3", pending=ShownPending(changes))
    board.set(phase="running")  # written now (remote() defers a write so soon after the first)
    written = json.loads((tmp_path / "status.json").read_text())
    assert full_reads == []
    assert written["pending"] == written["remotes"]["s3"]["pending"] == 1001
    assert written["pending_paths"][:2] == ["unpacked/0999.txt", "unpacked/0998.txt"]
    assert len(written["pending_paths"]) == status.MAX_LISTED
    changes.mark_overflow()  # the watcher lost track: the rescan is listed first and counted
    board.set(phase="stopping")
    written = json.loads((tmp_path / "status.json").read_text())
    assert written["pending"] == 1002 and written["pending_paths"][0] == RESCAN
    assert full_reads == []


def test_with_two_remotes_the_status_counts_their_union():
    shared, only_one = ChangeSet(), ChangeSet()
    for rel in ("a", "b"):
        shared.add(rel)
    only_one.add("b")
    only_one.add("c")
    out = status._summarise({"remotes": {"s3": {"last_sync": None, "last_error": None},
                                          "gcs": {"last_sync": None, "last_error": None}}},
                            {"s3": ShownPending(shared), "gcs": ShownPending(only_one)})
    assert out["pending"] == 3 and out["pending_paths"] == ["a", "b", "c"]
    assert out["remotes"]["s3"]["pending"] == 2 and out["remotes"]["gcs"]["pending_paths"] == ["b", "c"]


def test_a_files_events_of_one_read_are_told_once_as_its_last_one_says_and_never_across_another_event():
    inotify = pytest.importorskip("watchdog.observers.inotify_c").InotifyConstants
    from rclone_jupyter.local.watcher import latest_only

    create, modify, close = inotify.IN_CREATE, inotify.IN_MODIFY, inotify.IN_CLOSE_WRITE
    folder = inotify.IN_CREATE | inotify.IN_ISDIR
    a1, b1, a2 = (1, create, 0, b"a"), (1, create, 0, b"b"), (2, create, 0, b"a")  # a2: the same name elsewhere
    burst = [a1, b1, (1, modify, 0, b"a"), a2, (1, modify, 0, b"b"), (1, close, 0, b"a"), (1, close, 0, b"b")]
    assert latest_only(burst) == [a2, (1, close, 0, b"a"), (1, close, 0, b"b")]
    # A folder's event, a delete, a move: what came before is kept, a watch may name another folder after it.
    for between in [(1, folder, 0, b"d"), (1, inotify.IN_DELETE, 0, b"a"), (1, inotify.IN_MOVED_FROM, 7, b"a"),
                    (1, inotify.IN_IGNORED, 0, b""), (-1, inotify.IN_Q_OVERFLOW, 0, b"")]:
        events = [a1, (1, modify, 0, b"a"), between, (1, modify, 0, b"a"), (1, close, 0, b"a")]
        assert latest_only(events) == [(1, modify, 0, b"a"), between, (1, close, 0, b"a")]
    # Still open at the end of the read: its last event says so (a later read tells the close).
    assert latest_only([a1, (1, modify, 0, b"a")]) == [(1, modify, 0, b"a")]
