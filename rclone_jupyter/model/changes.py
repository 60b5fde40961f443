"""The set of paths changed but not yet durable in one remote. Thread-safe."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time


@dataclasses.dataclass(frozen=True)
class Batch:
    """Paths (relative to the data folder, '/'-separated) to push in one run.

    `overflow` means the watcher lost track (queue overflow, polling fallback start): the change set is
    unknown, so the whole tree must be reconciled.
    """

    paths: frozenset[str] = frozenset()
    overflow: bool = False

    def __bool__(self) -> bool:
        return bool(self.paths) or self.overflow


class ChangeSet:
    """Queued paths plus what is in flight: the small lane's batch, and the large lane's one file. A path stays
    pending until the run (or the job) that carried it succeeds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: set[str] = set()
        self._overflow = False
        self._in_flight: Batch = Batch()
        self._lane: set[str] = set()  # paths whose upload is a background job (the large lane)
        # path -> wall-clock time of its oldest change not yet durable. Its keys are exactly the pending paths
        # (queued, in flight or in the large lane), in the order they first changed: the status reads their
        # count and the first few from it, whatever the size of a burst (count(), oldest_paths()).
        self._since: dict[str, float] = {}

    def add(self, rel: str) -> None:
        with self._lock:
            self._queued.add(rel)
            self._since.setdefault(rel, time.time())

    def mark_overflow(self) -> None:
        with self._lock:
            self._overflow = True

    def take(self, leave: set[str] | frozenset[str] = frozenset()) -> Batch:
        """Move everything queued but `leave` into flight and return it."""
        with self._lock:
            batch = Batch(frozenset(self._queued - leave), self._overflow)
            self._queued -= batch.paths
            self._overflow = False
            self._in_flight = batch
            return batch

    def done(self) -> None:
        """The batch in flight is durable."""
        with self._lock:
            for rel in self._in_flight.paths - self._queued - self._lane:
                self._since.pop(rel, None)
            self._in_flight = Batch()

    def take_one(self, rel: str) -> None:
        """A queued path's upload starts as a background job (the large lane)."""
        with self._lock:
            self._queued.discard(rel)
            self._lane.add(rel)
            self._since.setdefault(rel, time.time())

    def finish_one(self, rel: str, durable: bool) -> None:
        """The background job of `rel` ended: it landed (`durable`), or it failed or was cancelled and the path
        is queued again."""
        with self._lock:
            self._lane.discard(rel)
            if not durable:
                self._queued.add(rel)
                self._since.setdefault(rel, time.time())
            elif rel not in self._queued and rel not in self._in_flight.paths:
                self._since.pop(rel, None)

    def queued(self) -> set[str]:
        with self._lock:
            return set(self._queued)

    def put_back(self, only: set[str] | None = None) -> None:
        """The batch in flight failed: its paths (or `only` these, the part that failed) are pending again,
        merged with anything newer."""
        with self._lock:
            back = self._in_flight.paths if only is None else only
            self._queued |= back
            now = time.time()
            for rel in back:
                self._since.setdefault(rel, now)
            for rel in self._in_flight.paths - back - self._queued - self._lane:
                self._since.pop(rel, None)
            self._overflow = self._overflow or self._in_flight.overflow
            self._in_flight = Batch()

    def unknown(self) -> bool:
        """True while the watcher lost track and the walk that finds what it missed is not done yet."""
        with self._lock:
            return self._overflow or self._in_flight.overflow

    def has_queued(self) -> bool:
        with self._lock:
            return bool(self._queued) or self._overflow

    def pending(self) -> set[str]:
        """Every path not yet durable: queued or in flight (in either lane)."""
        with self._lock:
            return self._queued | set(self._in_flight.paths) | self._lane

    def count(self) -> int:
        """How many paths are pending (len(pending()), in O(1))."""
        with self._lock:
            return len(self._since)

    def oldest_paths(self, limit: int) -> list[str]:
        """The `limit` pending paths that have waited longest, oldest first (O(limit))."""
        with self._lock:
            return list(itertools.islice(self._since, limit))

    def oldest(self) -> float | None:
        """The wall-clock time of the oldest change not yet durable, or None. O(1): `_since` keeps insertion
        order and an entry is only added (setdefault) or removed, so the first entry is the oldest change."""
        with self._lock:
            return next(iter(self._since.values()), None)
