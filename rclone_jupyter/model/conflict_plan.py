"""Who keeps the name when a file differs here and in the bucket: one rule, for a push, a reconcile and the
merge of a second cloud (DESIGN invariant 6).

The newer version keeps the name; the other is kept beside it as name.conflictN.ext, on both sides. Equal
times (within the slack) keep the data folder's version at the name. A version gone here meanwhile leaves
the bucket's as the only one: it is brought back, nothing is kept twice.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from rclone_jupyter.model.known import Version, newer


class Winner(enum.Enum):
    HERE = "this one"
    BUCKET = "the bucket's"
    ONLY_BUCKET = "the bucket's, the only one left"


class KeepBoth(NamedTuple):
    key: str  # the object name
    rel: str  # the data folder path at the name
    aside: str  # the data folder path of the loser (name.conflictN.ext); "" when nothing is kept twice
    winner: Winner


def keep_both(key: str, rel: str, mine: Version | None, theirs: Version, aside: str) -> KeepBoth:
    """Given both versions and a free conflict name, who keeps the name."""
    if mine is None:
        return KeepBoth(key, rel, "", Winner.ONLY_BUCKET)
    return KeepBoth(key, rel, aside, Winner.BUCKET if newer(theirs, mine) else Winner.HERE)

