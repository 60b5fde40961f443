"""Read what a bisync run said: which paths changed on which side, and why it stopped if it did.

bisync's safety guards misfire on small trees (deleting 2 of 3 files, editing the only file, two empty
sides). The engine decides what to do from this report (engine/bisync.py); parsing lives here so the
rules there stay readable.
"""

from __future__ import annotations

import dataclasses
import json
import re

from rclone_jupyter.model.stamps import _stamp_ns

_DELTA = re.compile(r"^-\s+(Path1|Path2)\s+(File is new|File was deleted|File changed\b.*?)\s+-\s(.+)$")
_GUARD = re.compile(r"Safety abort: (too many deletes|all files were changed)\b.*? on (Path1|Path2)")
# Seen as: 'Safety abort: too many deletes (>50%, 2 of 3) on Path1 "loc/". Run with --force if desired.
_NEEDS_RESYNC = (
    "Must run --resync",
    "empty prior Path1 listing",
    "empty prior Path2 listing",
    "Empty current Path1 listing",
    "Empty current Path2 listing",
    "cannot find prior Path1 or Path2 listings",
)


@dataclasses.dataclass
class BisyncReport:
    deltas: dict[str, list[tuple[str, str]]] = dataclasses.field(default_factory=lambda: {"Path1": [], "Path2": []})
    guards: set[tuple[str, str]] = dataclasses.field(default_factory=set)  # (kind, side)
    needs_resync: bool = False
    empty_side: set[str] = dataclasses.field(default_factory=set)

    def feed(self, text: str) -> None:
        """Take one message of bisync's log."""
        text = text.strip()
        match = _DELTA.match(text)
        if match:
            side, what, path = match.groups()
            kind = {"File is new": "new", "File was deleted": "deleted"}.get(what, "changed")
            self.deltas[side].append((kind, path.strip()))
            return
        for guard in _GUARD.finditer(text):
            self.guards.add((guard.group(1), guard.group(2)))
        if any(marker.lower() in text.lower() for marker in _NEEDS_RESYNC):
            self.needs_resync = True
            for side in ("Path1", "Path2"):
                if f"current {side} listing" in text or f"prior {side} listing" in text:
                    self.empty_side.add(side)

    def paths(self, side: str, kind: str | None = None) -> list[str]:
        return [p for k, p in self.deltas[side] if kind is None or k == kind]

    def guard_on(self, side: str, kind: str | None = None) -> bool:
        return any(s == side and (kind is None or k == kind) for k, s in self.guards)


def parse_listing(text: str) -> dict[str, tuple[int, int]]:
    """Given a bisync listing file (`.path2.lst`), return {path: (size, mtime_ns)}.

    Lines look like: `- 8 - - 2026-11-25T20:58:42.443786562+0000 "a.txt"`.
    """
    out: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        if not line.startswith("- "):
            continue
        match = re.match(r'^-\s+(-?\d+)\s+\S+\s+\S+\s+(\S+)\s+"(.*)"$', line)
        if not match:
            continue
        size, stamp, quoted = match.groups()
        try:
            name = json.loads(f'"{quoted}"')
        except ValueError:
            name = quoted
        out[name] = (int(size), _stamp_ns(stamp))
    return out
