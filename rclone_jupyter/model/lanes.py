"""Which lane an upload takes, and when a file that keeps changing may be sent again. Pure.

Small never waits for big (docs/design.md, "Lanes"): a file of LARGE bytes or more is uploaded on its own, as a
background job of the rcd, beside the pushes of everything else. A save waits at most for the small lane's
batch in flight, whose largest file shares the uplink with the large lane: on the issue's 2 MiB/s uplink a
1 MiB file takes about a second there, which is the goal for a save (bench/link.py measures it). And a file
still being written that is big enough to matter goes to the large lane, whose job can be stopped.

A file still being written cannot be uploaded whole (rclone fails an upload whose source changed while it was
read), so each attempt that was cut short costs uplink for nothing. After such an attempt the file waits
SHARE times as long as the attempt took before it is tried again while it keeps changing: a large file
written for minutes takes at most 1 / (SHARE + 1) of the uplink, while a small log, whose attempts take
milliseconds, is still saved about once per quiet period. A file that is closed, or quiet, goes at once.
"""

from __future__ import annotations

MiB = 1024 * 1024
LARGE = 1 * MiB
SHARE = 3


def is_large(size: int | None) -> bool:
    return size is not None and size >= LARGE


def retry_after(ended: float, cost: float) -> float:
    """Given when an attempt that was cut short ended and how long it ran, return the earliest time the file may
    be tried again while it keeps changing."""
    return ended + SHARE * max(cost, 0.0)


def smallest_first(sizes: dict[str, int]) -> list[str]:
    """Paths in the order the final flush (and the large lane) takes them: smallest first, then by name."""
    return sorted(sizes, key=lambda rel: (sizes[rel], rel))
