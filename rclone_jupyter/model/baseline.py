"""The baseline: every object as this container last agreed with the bucket (`Known`), and its one writer.

Everything that learns a version (an upload landed, a download was placed, a listing showed our own upload,
a delete went through, bisync rebuilt its listing) records it here, through the few verbs below; everything
else reads it as a mapping {object name: Known}. One owner, so "what do we know about x" has one answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from rclone_jupyter.model.known import Known, Version


class Baseline(Mapping[str, Known]):
    def __init__(self, known: Mapping[str, Known] | None = None):
        self._known: dict[str, Known] = dict(known or {})

    # -- reading: a mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Known:
        return self._known[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)

    # -- writing: the only code that changes `known` ---------------------------------------------------

    def record(self, key: str, version: Version, listed: Version | None = None) -> None:
        """The bucket holds `version` of this object (our upload, a download, a check); `listed` is how a listing
        showed it, when we have one (None until the next listing adopts it)."""
        self._known[key] = Known(version.size, version.mtime_ns, listed)

    def adopt(self, key: str, listed: Version) -> None:
        """A listing showed our own upload: remember its stamp, so the next listing can be compared with it."""
        old = self._known[key]
        self._known[key] = Known(old.size, old.mtime_ns, listed)

    def forget(self, keys: Iterable[str]) -> None:
        """These objects are gone from the bucket (deleted by us or elsewhere), or are to be pushed afresh."""
        for key in keys:
            self._known.pop(key, None)

    def replace(self, versions: Mapping[str, Version]) -> None:
        """The whole baseline at once, from a listing that is authoritative (bisync's own)."""
        self._known = {key: Known(*version) for key, version in versions.items()}
