"""The baseline: every object as this container last agreed with the bucket (`Known`), and its one writer.

Everything that learns a version (an upload landed, a download was placed, a listing showed our own upload,
a delete went through, bisync rebuilt its listing) records it here, through the few verbs below; everything
else reads it as a mapping {object name: Known}. One owner, so "what do we know about x" has one answer.

A bucket may hold a million objects, so each one is kept as 32 bytes (16 until a listing showed our upload):
its size and time, then the listing's, packed as signed 64-bit numbers (72 bytes an object with its header,
where a Known with its numbers and its listed Version took about 270). A `Known` is made when one is read.
A time that does not fit in 64 bits (a file dated past the year 2262) is kept as the Known itself.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping

from rclone_jupyter.model.known import Known, Version

_ONE = struct.Struct("<qq")  # size, time
_TWO = struct.Struct("<qqqq")  # size, time, listed size, listed time


def _packed(size: int, mtime_ns: int, listed: Version | None) -> bytes | Known:
    try:
        return _ONE.pack(size, mtime_ns) if listed is None else _TWO.pack(size, mtime_ns, *listed)
    except struct.error:  # out of 64 bits: kept whole (rare enough to cost nothing)
        return Known(size, mtime_ns, listed)


def _unpacked(value: bytes | Known) -> Known:
    if type(value) is Known:
        return value
    if len(value) == _ONE.size:
        return Known(*_ONE.unpack(value))
    size, mtime_ns, listed_size, listed_ns = _TWO.unpack(value)
    return Known(size, mtime_ns, Version(listed_size, listed_ns))


def _copied(name: str) -> str:
    """A new str equal to `name` (str() and slicing give the same object back); lone surrogates kept."""
    return name.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")


def _copied_value(value: bytes | Known) -> bytes | Known:
    return bytes(memoryview(value)) if type(value) is bytes else value


class Baseline(Mapping[str, Known]):
    def __init__(self, known: Mapping[str, Known] | None = None):
        self._known: dict[str, bytes | Known] = {key: _packed(k.size, k.mtime_ns, k.listed)
                                                 for key, k in (known or {}).items()}

    # -- reading: a mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Known:
        return _unpacked(self._known[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)

    def __contains__(self, key: object) -> bool:
        return key in self._known

    def unsettled(self, listing: Mapping[str, Version]) -> set[str]:
        """The names a listing does not show as we last listed them: new, gone, changed, or our own uploads not
        listed since. Every other name is as we know it (a reconcile with nothing changed looks at none)."""
        known = self._known
        out = set(known.keys() ^ listing.keys())
        unpack_listed, two = _TWO.unpack_from, _TWO.size
        for key, listed in listing.items():
            value = known.get(key)
            if value is None:
                continue
            if type(value) is bytes:
                if len(value) != two or unpack_listed(value)[2:] != listed:
                    out.add(key)
            elif value.listed != listed:
                out.add(key)
        return out

    # -- writing: the only code that changes `known` ---------------------------------------------------

    def compact(self) -> None:
        """Copy every name and entry anew, once the start's passing structures (listings, walks of the data
        folder: several times the baseline's size) are freed. Made among them, the baseline's small objects kept
        most of the memory those used from being handed back (Python frees its 1 MiB arenas only when empty);
        made after them, they sit together and the rest goes back."""
        self._known = {_copied(key): _copied_value(value) for key, value in self._known.items()}


    def record(self, key: str, version: Version, listed: Version | None = None) -> None:
        """The bucket holds `version` of this object (our upload, a download, a check); `listed` is how a listing
        showed it, when we have one (None until the next listing adopts it)."""
        self._known[key] = _packed(version.size, version.mtime_ns, listed)

    def adopt(self, key: str, listed: Version) -> None:
        """A listing showed our own upload: remember its stamp, so the next listing can be compared with it."""
        old = self[key]
        self._known[key] = _packed(old.size, old.mtime_ns, listed)

    def forget(self, keys: Iterable[str]) -> None:
        """These objects are gone from the bucket (deleted by us or elsewhere), or are to be pushed afresh."""
        for key in keys:
            self._known.pop(key, None)

    def replace(self, versions: Mapping[str, Version]) -> None:
        """The whole baseline at once, from a listing that is authoritative (bisync's own)."""
        self._known = {key: _packed(version.size, version.mtime_ns, None) for key, version in versions.items()}
