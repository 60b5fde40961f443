"""The large files of a start that are still on their way, shared by two threads.

The start restores the small files, JupyterLab starts, then the background restore (engine/background.py)
brings the large ones, while the syncer's thread pushes the user's changes and reconciles. A name still to
come is in no one's `known`: no push or reconcile can take its absence for a delete. This object is where the
two threads meet, under one lock:

- the background restore `settle`s a name: it places the file only while the name is still waiting, and
  hands the version it placed over as `arrived`;
- the syncer's thread takes the arrivals `into` the baseline (model/baseline.py stays single-threaded) with
  the names still waiting (a reconcile leaves them alone), and the push `claim`s a name the user wrote before
  its bucket version arrived: the push owns it from then on (both versions are kept), and the background
  restore leaves it alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import Known, Version


class ToCome:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, Version] = {}  # {object name: its version in the restore's listing}
        self._arrived: dict[str, Known] = {}  # placed, not taken by the syncer yet
        self.bytes_total = 0

    def expect(self, listing: dict[str, Version]) -> None:
        with self._lock:
            self._waiting.update(listing)
            self.bytes_total += sum(size for size, _ in listing.values())

    def waiting(self) -> dict[str, Version]:
        with self._lock:
            return dict(self._waiting)

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._waiting)

    def settle(self, key: str, place: Callable[[], Known | None]) -> bool:
        """If `key` still waits: call place() (None: not placed) and stop waiting for it. Return whether placed."""
        with self._lock:
            if key not in self._waiting:
                return False
            known = place()
            del self._waiting[key]
            if known is not None:
                self._arrived[key] = known
            return known is not None

    def drop(self, keys: Iterable[str]) -> None:
        """No longer waited for (gone from the bucket meanwhile)."""
        with self._lock:
            for key in keys:
                self._waiting.pop(key, None)

    def claim(self, keys: Iterable[str]) -> set[str]:
        """The names among `keys` that still wait: they are the caller's from now on. Return them."""
        with self._lock:
            claimed = {key for key in keys if key in self._waiting}
            for key in claimed:
                del self._waiting[key]
            return claimed

    def take(self) -> tuple[dict[str, Known], frozenset[str]]:
        """The arrivals since the last call, and the names still waiting, at one moment."""
        with self._lock:
            arrived, self._arrived = self._arrived, {}
            return arrived, frozenset(self._waiting)

    def into(self, baseline: Baseline) -> frozenset[str]:
        """Record the arrivals in the baseline (call it from the thread that owns it); return the names still
        waiting, at the same moment: each name is in one of the two."""
        arrived, waiting = self.take()
        for key, known in arrived.items():
            baseline.record(key, Version(known.size, known.mtime_ns), known.listed)
        return waiting
