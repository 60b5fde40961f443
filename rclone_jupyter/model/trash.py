"""The versions the sync replaced, kept in the bucket folder under `.rclone-jupyter/trash/`: their names and the
pure rules about them (which overwrite is kept, what expires, what a recover brings back).

A kept version is one object, named

    .rclone-jupyter/trash/<when>-<kind>-<mode>/<object name>

- `<when>` is the time the sync replaced it, UTC to the millisecond, `20261201T204200.123Z`: names sort by time,
  and the name alone says how old a version is (expiry and the KEEP_EVERY rule need one LIST, no HEAD);
- `<kind>` is `deleted` or `replaced` (an upload went over it);
- `<mode>` is the file's permission bits, four octal digits (a recovered script is executable again);
- `<object name>` is the object's own name in the bucket folder, unchanged (already rclone's name: a link
  is `x.rclonelink`, a control character is its Unicode picture), so any name the bucket held fits here too,
  but for the ~55 bytes the prefix adds against the storage's limit on a whole name (NAME_LIMIT).

Everything one push replaces shares one `<when>`: an `rm -rf project/` is one folder of the trash, and comes
back with one command.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

from rclone_jupyter.model.known import local_name

TRASH = ".rclone-jupyter/trash"
DELETED, REPLACED = "deleted", "replaced"
KINDS = (DELETED, REPLACED)
# S3's and GCS's limit on an object name, in bytes (Azure's is 1,024 characters): a version whose name would
# be longer cannot be kept.
NAME_LIMIT = 1024
# Versions deleted this close together are one deletion (an `rm -rf` the watcher saw as several bursts).
SAME_DELETION_NS = 60 * 1_000_000_000
_MS = 1_000_000
_FOLDER = re.compile(r"^(\d{8}T\d{6})\.(\d{3})Z-(deleted|replaced)-([0-7]{4})$")


@dataclasses.dataclass(frozen=True, order=True)
class Kept:
    """One kept version: the object `key` (its name in the bucket folder) as it was until `at_ns`."""

    at_ns: int
    key: str
    kind: str
    mode: int
    size: int = 0

    @property
    def name(self) -> str:
        """The object's name in the trash folder (relative to TRASH)."""
        return f"{folder_of(self.at_ns, self.kind, self.mode)}/{self.key}"

    @property
    def path(self) -> str:
        """The data folder's path of the file it was."""
        return local_name(self.key)


def folder_of(at_ns: int, kind: str, mode: int) -> str:
    """The trash folder that holds the versions of one kind and mode replaced at `at_ns`."""
    if kind not in KINDS:
        raise ValueError(f"not a kind of kept version: {kind!r}")
    when = datetime.fromtimestamp(at_ns // 1_000_000_000, timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{when}.{(at_ns // _MS) % 1000:03d}Z-{kind}-{mode & 0o7777:04o}"


def parse(name: str, size: int = 0) -> Kept | None:
    """Given an object's name relative to TRASH (and its size), return the version it keeps; None for a name
    that is not one (anything else someone put there is never touched)."""
    folder, _, key = name.partition("/")
    match = _FOLDER.match(folder)
    if not match or not key:
        return None
    when, millis, kind, mode = match.groups()
    seconds = int(datetime.strptime(when, "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc).timestamp())
    return Kept(seconds * 1_000_000_000 + int(millis) * _MS, key, kind, int(mode, 8), size)


def fits(folder_prefix: str, kept: Kept) -> bool:
    """True if the version's full object name (under the bucket folder `folder_prefix`) is within NAME_LIMIT."""
    full = f"{folder_prefix.strip('/')}/{TRASH}/{kept.name}"
    return len(full.encode()) <= NAME_LIMIT


def overwrites_to_keep(keys: Iterable[str], last_kept: dict[str, int], now_ns: int, keep_every_s: float) -> set[str]:
    """Of the objects an upload is about to replace, those whose current version is kept: the ones with no
    replaced version kept in the last `keep_every_s` seconds (`last_kept`: {key: when the newest one was})."""
    window = int(keep_every_s * 1_000_000_000)
    return {key for key in keys if key not in last_kept or now_ns - last_kept[key] >= window}


def newest_overwrites(versions: Iterable[Kept]) -> dict[str, int]:
    """{key: when its newest replaced version was kept}: what overwrites_to_keep needs, from a trash listing."""
    out: dict[str, int] = {}
    for v in versions:
        if v.kind == REPLACED and v.at_ns > out.get(v.key, -1):
            out[v.key] = v.at_ns
    return out


def expired(versions: Iterable[Kept], now_ns: int, keep_days: float) -> list[Kept]:
    """The versions kept longer than `keep_days` days, oldest first."""
    limit = now_ns - int(keep_days * 86_400 * 1_000_000_000)
    return sorted(v for v in versions if v.at_ns < limit)


def history(versions: Iterable[Kept], path: str = "") -> list[Kept]:
    """The versions of the file at `path`, or of every file under the folder `path` ('' is everything),
    newest first."""
    return sorted((v for v in versions if _under(v.path, path)), key=lambda v: (-v.at_ns, v.path))


def merged(per_cloud: Iterable[Iterable[Kept]]) -> list[tuple[Kept, list[int]]]:
    """The kept versions of several clouds (each its own trash, in the settings' order) as one list of
    (version, the indexes of the clouds that hold it). Each cloud keeps what the sync replaced in it, at the
    moment its own push did: the same file, kind and size kept within SAME_DELETION_NS in a later cloud is the
    same version, shown once, as the first cloud that holds it names it."""
    out: list[tuple[Kept, list[int]]] = []
    by_file: dict[tuple[str, str, int], list[tuple[Kept, list[int]]]] = {}
    for index, versions in enumerate(per_cloud):
        for version in sorted(versions):
            same = by_file.setdefault((version.key, version.kind, version.size), [])
            match = next((entry for entry in same if index not in entry[1]
                          and abs(entry[0].at_ns - version.at_ns) <= SAME_DELETION_NS), None)
            if match is not None:
                match[1].append(index)
            else:
                entry = (version, [index])
                same.append(entry)
                out.append(entry)
    return out


@dataclasses.dataclass(frozen=True)
class Step:
    """Bring `version` back to the data folder path `target`; `aside`: a file is there now and is kept as a
    conflict copy first (never overwritten)."""

    version: Kept
    target: str
    aside: bool


def recover_plan(versions: Iterable[Kept], path: str, *, at_ns: int | None = None,
                 exists: Callable[[str], bool]) -> list[Step]:
    """What `recover PATH [--at TIME]` brings back.

    - `path` names a file that has kept versions: its newest version kept at or before `at_ns` (to the second,
      as `history` shows times), or its newest of all;
    - else `path` is a folder: every file deleted under it in the one deletion at or before `at_ns` (or the
      newest one): the versions deleted within SAME_DELETION_NS before that deletion's last, the newest of each
      file.
    `exists(target)`: a file is at that data folder path now (it is kept as a conflict copy first).
    An empty plan: nothing kept matches.
    """
    path = path.strip("/")
    limit = None if at_ns is None else (at_ns // 1_000_000_000 + 1) * 1_000_000_000  # the whole second
    candidates = [v for v in history(versions, path) if limit is None or v.at_ns < limit]
    exact = [v for v in candidates if v.path == path]
    if exact:
        chosen = [exact[0]]
    else:
        deleted = [v for v in candidates if v.kind == DELETED]
        if not deleted:
            return []
        last = deleted[0].at_ns
        chosen, seen = [], set()
        for v in deleted:  # newest first
            if last - v.at_ns <= SAME_DELETION_NS and v.path not in seen:
                seen.add(v.path)
                chosen.append(v)
    return [Step(v, v.path, exists(v.path)) for v in sorted(chosen, key=lambda v: v.path)]


def _under(rel: str, path: str) -> bool:
    path = path.strip("/")
    return not path or rel == path or rel.startswith(path + "/")


def parse_time(text: str) -> int:
    """A time as `history` shows it ('2026-12-01T20:42:05Z'), or as a person types it ('2026-12-01 20:42',
    a time zone optional: UTC), in nanoseconds since the epoch. ValueError if it is none of these."""
    raw = text.strip()
    folder = _FOLDER.match(f"{raw}-deleted-0000")
    if folder:
        return parse(f"{raw}-deleted-0000/x").at_ns  # a trash folder's own stamp
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a time such as 2026-12-01T20:42:05Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def show_time(at_ns: int) -> str:
    """A version's time as `history` prints it and `recover --at` reads it back (UTC, to the second)."""
    return datetime.fromtimestamp(at_ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
