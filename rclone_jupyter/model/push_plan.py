"""What a push does, decided before anything moves: pure functions, one rule per case.

A push observes three views of each name the watcher reported: the data folder's version now (`local`),
the baseline (`known`), and the bucket's version now (`theirs`, one HEAD or one LIST per new folder). Then:

| data folder          | bucket now, against known          | plan                                  |
| -------------------- | ---------------------------------- | ------------------------------------- |
| gone, or as known    | (not asked)                        | skip                                  |
| changed              | as here already                    | record (our upload of a failed run)   |
| changed              | as known, or absent and not known  | upload                                |
| changed              | changed or created since known     | keep both (conflict)                  |

Deletes (names known, or sent by an upload whose landing is unknown; gone here): the bucket still as known ->
delete; changed or created there since -> bring it back (newer work than the delete); already gone -> forget.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rclone_jupyter.model.known import Known, Version, same


@dataclasses.dataclass
class UploadPlan:
    record: dict[str, Version] = dataclasses.field(default_factory=dict)  # already there as here
    upload: list[str] = dataclasses.field(default_factory=list)
    conflicts: dict[str, Version] = dataclasses.field(default_factory=dict)  # {name: the bucket's version}


@dataclasses.dataclass
class DeletePlan:
    delete: list[str] = dataclasses.field(default_factory=list)
    bring_back: list[str] = dataclasses.field(default_factory=list)
    forget: list[str] = dataclasses.field(default_factory=list)


def to_check(local: Mapping[str, Version | None], known: Mapping[str, Known]) -> list[str]:
    """The names worth asking the bucket about: there here, and not as the bucket was known to hold them."""
    return [key for key, mine in local.items()
            if mine is not None and not (key in known and same(mine, known[key].version))]


def plan_uploads(local: Mapping[str, Version], known: Mapping[str, Known],
                 theirs: Mapping[str, Version]) -> UploadPlan:
    """For each name of `to_check`, given the bucket's version now (absent if not there): the table above."""
    out = UploadPlan()
    for key, mine in local.items():
        bucket = theirs.get(key)
        was = known.get(key)
        if bucket is not None and same(bucket, mine):
            out.record[key] = bucket
        elif bucket is not None and (was is None or not same(bucket, was.version)):
            out.conflicts[key] = bucket
        else:
            out.upload.append(key)
    return out


def plan_deletes(doomed: list[str], known: Mapping[str, Known], theirs: Mapping[str, Version]) -> DeletePlan:
    """For names gone here, given the bucket's versions now: delete only the version we knew."""
    out = DeletePlan()
    for key in doomed:
        if key not in theirs:
            out.forget.append(key)
        elif key in known and same(theirs[key], known[key].version):
            out.delete.append(key)
        else:
            out.bring_back.append(key)
    return out
