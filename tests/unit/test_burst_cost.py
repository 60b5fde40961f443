"""A burst of new files costs linear time (issue: 100,000 new files once took about an hour of CPU).

The structural properties, with a fake clock: the status file is written a bounded number of times per
second however many events arrive, and the pending set is read only when it is written. The CPU figures
are measured by bench/burst.py, not asserted here.
"""

from __future__ import annotations

import json

import rclone_jupyter.daemon.status as status
import rclone_jupyter.model.changes as changes_module
from rclone_jupyter.daemon.status import StatusBoard
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
