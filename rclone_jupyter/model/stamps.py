"""rclone's time stamps as nanoseconds since the epoch (all nine digits kept: modtimes are compared to the ns)."""

from __future__ import annotations

import re
from datetime import datetime


def _stamp_ns(stamp: str) -> int:
    """'2026-11-25T20:58:42.443786562+0000' -> nanoseconds since the epoch (keeps all nine digits)."""
    main, _, rest = stamp.partition(".")
    frac = re.match(r"(\d*)(.*)$", rest)
    digits, zone = (frac.group(1), frac.group(2)) if frac else ("", "")
    base = datetime.strptime(main + (zone or "+0000").replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
    return int(base.timestamp()) * 1_000_000_000 + int((digits + "000000000")[:9])


def stamp_ns(stamp: str) -> int:
    """An RFC 3339 time as rclone prints it ('...Z' or '+00:00') -> nanoseconds since the epoch."""
    stamp = stamp.replace("Z", "+0000")
    if len(stamp) > 6 and stamp[-3] == ":" and stamp[-6] in "+-":
        stamp = stamp[:-3] + stamp[-2:]
    return _stamp_ns(stamp)
