"""When a burst of changes is due for sync. Clock injectable.

A burst is due when nothing changed for `quiet` seconds, or `max_delay` seconds after its first change,
whichever comes first: a burst of writes becomes one sync, a file that never stops changing is still saved.

A burst made only of *finished* changes (a file closed after writing, a rename into place as Jupyter's atomic
save does, a deletion, a new folder or link) needs no quiet period: it is due `settle` seconds after its last
event, just long enough to gather the rest of the same save. A file still open for writing keeps the quiet
period, and so does a path uploaded less than `quiet` seconds ago (a log written and closed line by line is
still uploaded at most once per quiet period).
"""

from __future__ import annotations

import time
from collections.abc import Callable

SETTLE = 0.05  # seconds: one save's events (write, close, rename) arrive within a few milliseconds


class Debouncer:
    def __init__(self, quiet: float, max_delay: float, clock: Callable[[], float] = time.monotonic, *,
                 settle: float = SETTLE):
        if max_delay < quiet:
            raise ValueError("max_delay must not be shorter than quiet")
        self.quiet = quiet
        self.max_delay = max_delay
        self.settle = min(settle, quiet)
        self.clock = clock
        self._first: float | None = None
        self._last: float | None = None
        self._burst: set[str] = set()
        self._open: set[str] = set()  # paths of the burst whose last event was not a finished write
        self._unknown = False  # a change with no path (the watcher lost track): no fast path
        self._taken_at: dict[str, float] = {}  # path -> when a run last took it
        self._held_until = -1e18  # the burst needs the quiet period until then: a path of it was taken lately

    def note(self, rel: str | None = None, finished: bool = False) -> None:
        now = self.clock()
        if self._first is None:
            self._first = now
        self._last = now
        if rel is None:
            self._unknown = True
            return
        self._burst.add(rel)
        taken = self._taken_at.get(rel)
        if taken is not None:
            self._held_until = max(self._held_until, taken + self.quiet)
        if finished:
            self._open.discard(rel)
        else:
            self._open.add(rel)

    def _settled(self) -> bool:
        """O(1): it is asked at every event of a burst (a burst of N files must cost O(N), not O(N^2))."""
        if self._unknown or self._open or not self._burst:
            return False
        return self.clock() >= self._held_until

    def due_at(self) -> float | None:
        """Return the clock time at which the current burst is due, or None when nothing is waiting."""
        if self._first is None or self._last is None:
            return None
        quiet = self.settle if self._settled() else self.quiet
        return min(self._last + quiet, self._first + self.max_delay)

    def is_due(self) -> bool:
        due = self.due_at()
        return due is not None and self.clock() >= due

    def reset(self) -> None:
        """A run took the burst."""
        now = self.clock()
        for rel in self._burst:
            self._taken_at[rel] = now
        if len(self._taken_at) > 10_000 or self._burst:
            self._taken_at = {r: t for r, t in self._taken_at.items() if now - t < self.quiet}
        self._first = self._last = None
        self._held_until = -1e18
        self._burst.clear()
        self._open.clear()
        self._unknown = False
