"""The bucket folder as this container knows it, and the data folder's side of the same names.

Names are rclone's names for objects in the bucket folder, relative to it: a regular file `a/b.txt` is the
object `a/b.txt`; a symbolic link `a/lnk` is the object `a/lnk.rclonelink` whose content is the link's target
text (rclone's `--links` convention, readable by any rclone user); a control character in a file name is its
Unicode picture (`a\nb` is `a␊b`), as rclone's local backend writes it.

`Known` is one object as this container last agreed with it: its size and modification time (rclone's
modtime, which is the data folder's mtime of the version we uploaded or downloaded), and the `(size, time)`
a bucket listing shows for it. On S3 the listing's time is the server's Last-Modified (a listing alone, no
HEAD per object); it is unknown (`listed=None`) between our own upload and the next listing, which then adopts
it. Comparing a fresh listing with these `listed` stamps is how a change made elsewhere is found.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from rclone_jupyter.model.stamps import stamp_ns

LINK_SUFFIX = ".rclonelink"
# A remote modtime within this of ours is the same version (some stores round to the millisecond).
MTIME_SLACK_NS = 1_000_000

class Version(NamedTuple):
    """One version of a file or an object: a size, and a time (rclone's modtime, or a listing's stamp)."""

    size: int
    mtime_ns: int


@dataclasses.dataclass(frozen=True, slots=True)  # no __dict__: one per object, a million in a large bucket
class Known:
    size: int
    mtime_ns: int
    listed: Version | None = None

    @property
    def version(self) -> Version:
        return Version(self.size, self.mtime_ns)


_QUOTE = "\u201b"  # rclone's quote for a character that would otherwise read as an encoded one


# The characters encode_name and decode_name change. Most names have none: they are their own encoding (a
# burst of 100,000 new files asks for each name's encoding about a dozen times).
_TO_ENCODE = re.compile("[\x00-\x1f\x7f\u2400-\u2421\u201b]")
_TO_DECODE = re.compile("[\u2400-\u241f\u2421\u201b]")


def encode_name(rel: str) -> str:
    """A data folder path as rclone names it: control characters become their Unicode pictures (a line break
    is U+240A), as rclone's local backend does, so every name fits a one-name-per-line list."""
    if not _TO_ENCODE.search(rel):
        return rel
    out = []
    for c in rel:
        code = ord(c)
        if code < 0x20:
            out.append(chr(0x2400 + code))
        elif code == 0x7F:
            out.append("\u2421")
        elif 0x2400 <= code <= 0x2421 or c == _QUOTE:
            out.append(_QUOTE + c)
        else:
            out.append(c)
    return "".join(out)


def decode_name(name: str) -> str:
    """The inverse of encode_name."""
    if not _TO_DECODE.search(name):
        return name
    out = []
    quoted = False
    for c in name:
        code = ord(c)
        if quoted:
            out.append(c)
            quoted = False
        elif c == _QUOTE:
            quoted = True
        elif 0x2400 <= code < 0x2420:
            out.append(chr(code - 0x2400))
        elif code == 0x2421:
            out.append("\x7f")
        else:
            out.append(c)
    if quoted:
        out.append(_QUOTE)
    return "".join(out)


def entry_version(entry: dict) -> Version:
    """The (size, time) of one rclone listing entry (lsjson's, or the rc's operations/list)."""
    return Version(int(entry["Size"]), stamp_ns(entry["ModTime"]))


def local_name(key: str) -> str:
    """The data folder's path of an object: a link object `x.rclonelink` is the link `x`."""
    return decode_name(key[: -len(LINK_SUFFIX)] if key.endswith(LINK_SUFFIX) else key)


def keys_for(rel: str) -> tuple[str, str]:
    """The two object names a data folder path may have: as a file, and as a link."""
    key = encode_name(rel)
    return key, key + LINK_SUFFIX


def local_version(root: Path, key: str, *, walked: bool = False, folders: RealFolders | None = None
                  ) -> Version | None:
    """The data folder's version of an object name, without following any link; None if it is not there.

    A link object's version is the link's (target length, mtime), as rclone --links uploads it; a regular
    file's is (size, mtime). Anything else (a folder, a socket, a link where a file is named) is None, and so
    is a path below a link (a folder replaced by a link: what is there now is outside the data folder, and
    the folder's files are gone as the user sees it). `walked`: the caller reached it through real folders.
    `folders`: the folders on the way as one look at them saw them (RealFolders), for many names at once.
    """
    is_link = key.endswith(LINK_SUFFIX)
    if not walked and (folders or RealFolders(root)).under_link(local_name(key)):
        return None
    path = os.path.join(root, local_name(key))
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if is_link and stat.S_ISLNK(st.st_mode):
        return Version(len(os.fsencode(os.readlink(path))), st.st_mtime_ns)
    if not is_link and stat.S_ISREG(st.st_mode):
        return Version(st.st_size, st.st_mtime_ns)
    return None


def key_of(root: Path, rel: str) -> str | None:
    """The object name of a data folder path as it is now: a regular file or a link; None for anything else."""
    found = key_and_version(root, rel)
    return found[0] if found is not None else None


class Found(NamedTuple):
    """A data folder path as one lstat saw it: its object name, its version, and its st_mode."""

    key: str
    version: Version
    st_mode: int


def key_and_version(root: Path | str, rel: str) -> Found | None:
    """`key_of` and that object's `local_version` from one look at the path (a burst of new files is looked at
    once per file, not twice), and the mode that look saw. The folders on the way are the caller's to check
    (RealFolders, or a walk)."""
    path = os.path.join(root, rel)
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(path)
        except OSError:  # gone, or no longer a link, since the lstat (ENOENT, EINVAL)
            return None
        return Found(encode_name(rel) + LINK_SUFFIX, Version(len(os.fsencode(target)), st.st_mtime_ns), st.st_mode)
    if stat.S_ISREG(st.st_mode) and not rel.endswith(LINK_SUFFIX):  # that name is a link's (not_an_object)
        return Found(encode_name(rel), Version(st.st_size, st.st_mtime_ns), st.st_mode)
    return None


def same(a: Version | None, b: Version | None) -> bool:
    """True if two (size, mtime_ns) versions are the same version of a file."""
    if a is None or b is None:
        return False
    (a_size, a_ns), (b_size, b_ns) = a, b
    if a_size != b_size:
        return False
    if abs(a_ns - b_ns) <= MTIME_SLACK_NS:
        return True
    # A store that lost rclone's modtime metadata reports whole seconds (S3's Last-Modified, truncated). The
    # same second counts as the same version: otherwise an unchanged object looks edited elsewhere.
    whole = 1_000_000_000
    return (a_ns % whole == 0 or b_ns % whole == 0) and a_ns // whole == b_ns // whole


def dated_between(version: Version, earliest_ns: int, latest_ns: int) -> bool:
    """True if the version's time lies between the two times (with the slack). A whole-second stamp (a store
    that lost rclone's modtime metadata, see `same`) counts from the start of the earliest time's second."""
    whole = 1_000_000_000
    if version.mtime_ns % whole == 0:
        earliest_ns -= earliest_ns % whole
    return earliest_ns - MTIME_SLACK_NS <= version.mtime_ns <= latest_ns + MTIME_SLACK_NS


def newer(a: Version, b: Version) -> bool:
    """True if `a` is newer than `b` by more than the slack (equal times are not newer)."""
    (_, a_ns), (_, b_ns) = a, b
    return a_ns > b_ns + MTIME_SLACK_NS


def ancestors(rel: str) -> list[str]:
    """The folders on the way to a path, outermost first: `a/b/c` gives `a`, `a/b`."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def folders_of(paths: Iterable[str]) -> set[str]:
    """Every folder on the way to any of these paths."""
    return {folder for path in paths for folder in ancestors(path)}


def outermost_outside(rel: str, folders: set[str]) -> str | None:
    """The outermost folder on the way to `rel` that is not in `folders`, or None if all of them are."""
    return next((folder for folder in ancestors(rel) if folder not in folders), None)


def covered(path: str, paths: set[str]) -> bool:
    """True if `path` or a folder above it is in `paths`."""
    return path in paths or any(folder in paths for folder in ancestors(path))


def under_link(root: Path, rel: str) -> bool:
    """True if a folder on the way to `rel` (not `rel` itself) is a symbolic link, or not a folder at all.

    Nothing is read or written through a link: a path below one is outside the data folder.
    """
    return RealFolders(root).under_link(rel)


_REAL, _NOT_A_FOLDER, _MISSING = "real", "not a folder", "missing"


class RealFolders:
    """`under_link` for many paths of one moment (a phase of one push): each folder is looked at once, not
    once per file in it. Like any look at the data folder it can be out of date a moment later; what reads
    files never trusts it (local/upload_view.py opens each one through real folders)."""

    def __init__(self, root: Path):
        self.root = root
        self._states: dict[str, str] = {}

    def under_link(self, rel: str) -> bool:
        """True if a folder on the way to `rel` (not `rel` itself) is a symbolic link, or not a folder at all."""
        for folder in ancestors(rel):
            state = self._states.get(folder)
            if state is None:
                state = self._states[folder] = self._state(folder)
            if state is not _REAL:
                return state is _NOT_A_FOLDER
        return False

    def _state(self, folder: str) -> str:
        try:
            return _REAL if stat.S_ISDIR(os.lstat(os.path.join(self.root, folder)).st_mode) else _NOT_A_FOLDER
        except FileNotFoundError:
            return _MISSING


# What any name that unrepresentable refuses has (a name without it is fine: every reconcile asks of every
# object): an empty, '.' or '..' part (fullwidth dots too), a NUL, or a part long enough to be over 255 bytes.
_MAYBE_UNREPRESENTABLE = re.compile("(?:^|/)(?:\\.{1,2}|\uff0e{1,2})?(?:/|$)|\x00|[^/]{64}")
maybe_unrepresentable = _MAYBE_UNREPRESENTABLE.search  # (a match: ask unrepresentable; none: it is fine)


def unrepresentable(key: str) -> str | None:
    """Why an object name cannot be a path in the data folder, or None if it can."""
    if not _MAYBE_UNREPRESENTABLE.search(key):
        return None
    parts = key.split("/")
    # rclone shows a key's '.' and '..' parts as fullwidth dots (U+FF0E): the same names, encoded.
    if any(part in ("", ".", "..", "\uff0e", "\uff0e\uff0e") for part in parts):
        return "its name has an empty, '.' or '..' part"
    if any(len(os.fsencode(part)) > 255 for part in parts):
        return "a part of its name is longer than 255 bytes"
    if "\0" in key:
        return "its name has a NUL character"
    return None


def unsaveable(rel: str) -> str | None:
    """Why a data folder path cannot become an object name, or None if it can.

    A name that is not valid UTF-8 (its bytes come through os.fsdecode as surrogates): rclone replaces such
    bytes when it reads the folder, so the object would have another name and could never be matched, restored
    or deleted as this file.
    """
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8, which rclone cannot keep: rename it (e.g. convmv or `mv`)"
    return None


def not_an_object(root: Path, rel: str) -> str | None:
    """Why the data folder's path `rel` cannot be saved as an object, or None (it can, or it is not there).

    Besides a name that is not UTF-8 (unsaveable): a regular file whose name ends in `.rclonelink`. With
    --links rclone takes that name for a symbolic link both ways (the local file `x.rclonelink` is read and
    written as the link `x`), so such a file can neither be uploaded nor come back as itself.
    """
    why = unsaveable(rel)
    if why:
        return why if os.path.lexists(os.path.join(root, rel)) else None
    if rel.endswith(LINK_SUFFIX):
        try:
            if stat.S_ISREG(os.lstat(os.path.join(root, rel)).st_mode):
                return (f"rclone takes a file named *{LINK_SUFFIX} for a symbolic link (--links), so it cannot be "
                        "saved as a file: rename it")
        except (FileNotFoundError, NotADirectoryError):
            pass
    return None


def shown(rel: str) -> str:
    """A data folder path as logs and the status show it: bytes that are not UTF-8 as \\xNN."""
    return os.fsencode(rel).decode("utf-8", "backslashreplace")
