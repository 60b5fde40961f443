"""What to do about a fresh listing of the bucket folder: a pure function, one rule per case.

Three views meet here: `known` (each object as this container last agreed with it), `listing` (the bucket
folder now, from LIST requests alone), and the data folder (its version of each name now, and whether this
container changed the name since: queued or in flight in the change set). The rules (docs/design.md):

| bucket, since known        | data folder untouched | data folder changed (file there)  | deleted here     |
| -------------------------- | --------------------- | --------------------------------- | ---------------- |
| added or changed elsewhere | pull                  | keep both (conflict)              | pull (work wins) |
| deleted elsewhere          | delete here           | push again (our version wins)     | forget           |

An object deleted elsewhere is deleted here only while that looks like a decision, not an accident: when
the bucket folder lost every file we knew, or more than half of them (at least two), nothing is deleted here,
the local copies are uploaded again, and the plan says so (`disappeared`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Set

from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import Known, Version, local_name, same


@dataclasses.dataclass
class Plan:
    adopt: dict[str, Version] = dataclasses.field(default_factory=dict)  # our own uploads, now listed
    pull: list[str] = dataclasses.field(default_factory=list)
    delete_here: list[str] = dataclasses.field(default_factory=list)
    keep_both: list[str] = dataclasses.field(default_factory=list)
    push: list[str] = dataclasses.field(default_factory=list)
    forget: list[str] = dataclasses.field(default_factory=list)
    disappeared: list[str] = dataclasses.field(default_factory=list)  # deletions elsewhere not followed

    def changes_here(self) -> int:
        return len(self.pull) + len(self.delete_here) + len(self.keep_both)

    def __bool__(self) -> bool:
        return bool(self.pull or self.delete_here or self.keep_both or self.push or self.forget)

    def lines(self) -> list[str]:
        """The plan as a person reads it (`sync --once --dry-run`)."""
        out = [f"bring in {local_name(k)} (added or changed elsewhere)" for k in self.pull]
        out += [f"delete {local_name(k)} here (deleted elsewhere)" for k in self.delete_here]
        out += [f"keep both versions of {local_name(k)} (changed here and elsewhere)" for k in self.keep_both]
        out += [f"upload {local_name(k)} again (deleted elsewhere, still here)" for k in self.push
                if k not in self.disappeared]
        if self.disappeared:
            out.append(f"not deleting {len(self.disappeared)} file(s) here that disappeared from the bucket (e.g. "
                       f"{', '.join(local_name(k) for k in self.disappeared[:5])}): they are uploaded again")
        return out


def remote_change(known: Known | None, listed: Version | None) -> str | None:
    """How the bucket's object changed since we knew it: 'added', 'changed', 'deleted', 'ours' or None."""
    if known is None:
        return "added" if listed is not None else None
    if listed is None:
        return "deleted"
    if known.listed is None:
        # Our own upload, not listed since: the same size is ours (its server time is new to us). A different
        # size is someone else's upload after ours.
        listed_size, _ = listed
        return "ours" if listed_size == known.size else "changed"
    return None if listed == known.listed else "changed"


def plan(known: Mapping[str, Known], listing: Mapping[str, Version], local: Callable[[str], Version | None],
         changed_here: Callable[[str], bool], leave: Set[str] = frozenset()) -> Plan:
    """Given the three views, return what to do (see the table above). Pure: reads, never acts. `leave`: names
    this container is moving itself right now (a large file of the start still to come, a large upload still
    running): whatever the listing shows of them is that move's, so nothing is planned for them."""
    out = Plan()
    baseline = known if isinstance(known, Baseline) else Baseline(known)
    for key in sorted(baseline.unsettled(listing) - leave):  # the names remote_change says something about
        k, listed = known.get(key), listing.get(key)
        change = remote_change(k, listed)
        if change is None:
            continue
        if change == "ours":
            out.adopt[key] = listed
            continue
        here_now = local(key)
        untouched = not changed_here(key) and (same(here_now, k.version) if k is not None else here_now is None)
        if change == "deleted":
            if untouched:
                out.delete_here.append(key)
            elif here_now is not None:
                out.push.append(key)
            else:
                out.forget.append(key)
        elif untouched or here_now is None:
            out.pull.append(key)
        else:
            out.keep_both.append(key)
    if out.delete_here and _looks_like_an_accident(len(out.delete_here), len(known), listing):
        out.disappeared, out.delete_here = out.delete_here, []
        out.push += out.disappeared
    return out


def _looks_like_an_accident(deleted: int, known: int, listing: Mapping[str, Version]) -> bool:
    if not listing:
        return True  # every file gone: an emptied bucket folder, never a reason to empty the data folder
    return deleted >= 2 and deleted * 2 > known


def within_room(sizes: Mapping[str, int], room: int) -> tuple[list[str], list[str]]:
    """Split the objects to download ({name: size}) into those that fit in `room` bytes together, taken
    smallest first (the most files), and the rest."""
    fit: list[str] = []
    rest: list[str] = []
    used = 0
    for name in sorted(sizes, key=lambda n: (sizes[n], n)):
        if used + sizes[name] <= room:
            fit.append(name)
            used += sizes[name]
        else:
            rest.append(name)
    return fit, rest
