"""rclone's time stamps as nanoseconds since the epoch (all nine digits kept: modtimes are compared to the ns)."""

from __future__ import annotations

import datetime as dt
import re
from datetime import datetime

_EPOCH_DAY = dt.date(1970, 1, 1).toordinal()
# What rclone prints (RFC 3339, up to nine digits of fraction): read with integers alone. A folder listed through
# the rc is a million of these, and strptime cost 20 us each; anything else takes the general way below.
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)T([01]\d|2[0-3]):([0-5]\d):([0-5]\d)(?:\.(\d{1,9}))?"
                      r"(?:Z|([+-])([01]\d|2[0-3]):?([0-5]\d))\Z")


def _stamp_ns(stamp: str) -> int:
    """'2026-11-25T20:58:42.443786562+0000' -> nanoseconds since the epoch (keeps all nine digits)."""
    main, _, rest = stamp.partition(".")
    frac = re.match(r"(\d*)(.*)$", rest)
    digits, zone = (frac.group(1), frac.group(2)) if frac else ("", "")
    base = datetime.strptime(main + (zone or "+0000").replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S%z")
    return int(base.timestamp()) * 1_000_000_000 + int((digits + "000000000")[:9])


def stamp_ns(stamp: str) -> int:
    """An RFC 3339 time as rclone prints it ('...Z' or '+00:00') -> nanoseconds since the epoch."""
    found = _RFC3339.match(stamp)
    if found is not None:
        year, month, day, hour, minute, second, digits, sign, zone_h, zone_m = found.groups()
        days = dt.date(int(year), int(month), int(day)).toordinal() - _EPOCH_DAY  # a bad date: ValueError, as before
        seconds = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
        if sign is not None:
            offset = int(zone_h) * 3600 + int(zone_m) * 60
            seconds += -offset if sign == "+" else offset
        return seconds * 1_000_000_000 + (int(digits.ljust(9, "0")) if digits else 0)
    stamp = stamp.replace("Z", "+0000")
    if len(stamp) > 6 and stamp[-3] == ":" and stamp[-6] in "+-":
        stamp = stamp[:-3] + stamp[-2:]
    return _stamp_ns(stamp)
