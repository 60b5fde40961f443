"""When a burst of changes is due for sync: a quiet period, bounded by a maximum delay. Clock injectable."""

from __future__ import annotations

import time
from collections.abc import Callable


class Debouncer:
    """Tracks the first and last change of the current burst.

    Due when nothing changed for `quiet` seconds, or `max_delay` seconds after the burst's first change,
    whichever comes first: a burst of writes becomes one sync, a file that never stops changing is still saved.
    """

    def __init__(self, quiet: float, max_delay: float, clock: Callable[[], float] = time.monotonic):
        if max_delay < quiet:
            raise ValueError("max_delay must not be shorter than quiet")
        self.quiet = quiet
        self.max_delay = max_delay
        self.clock = clock
        self._first: float | None = None
        self._last: float | None = None

    def note(self) -> None:
        now = self.clock()
        if self._first is None:
            self._first = now
        self._last = now

    def due_at(self) -> float | None:
        """Return the clock time at which the current burst is due, or None when nothing is waiting."""
        if self._first is None or self._last is None:
            return None
        return min(self._last + self.quiet, self._first + self.max_delay)

    def is_due(self) -> bool:
        due = self.due_at()
        return due is not None and self.clock() >= due

    def reset(self) -> None:
        self._first = self._last = None
