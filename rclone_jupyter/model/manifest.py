"""What an object store cannot hold by itself, kept in one small object beside the heartbeats:
`.rclone-jupyter/tree.json` holds the permission bits of files and the empty folders.

Why not rclone's `--metadata` for modes (the mode in each object's metadata): reading it back costs a HEAD
per object at restore (measured on an AWS-like server: a restore of N files went from LIST + N GET to
LIST + N GET + N HEAD), and the start must cost what a copy costs.
Why not directory markers (`dir/` objects) for empty folders: `rclone serve s3`, the demo's server, stores a
marker as an empty *file* named `dir`, which every tool then shows as a file and a restore brings back as one.

The manifest is one GET at start and one PUT when a mode or an empty folder changes. It lists only the files
whose mode is not what a restore gives anyway (0666 less the umask, usually 0644), so a tree of notebooks
keeps it empty and a venv adds its few dozen executables; and only folders that are empty (a folder with a
file in it comes back with the file).

Two containers on one bucket folder: each merges the other's manifest when it sees it changed (at its next
reconcile); an entry changed on both within that window keeps the last writer's. File contents never depend
on it.

The manifest comes from the bucket, so it is untrusted input (`parse`): only names that are paths inside the
data folder (relative, no '.', '..' or empty part), only permission bits (0o777: never setuid, setgid or
sticky), only the types written here (an object of octal strings, a list of strings), and at most MAX_BYTES
(the caller reads no more; a bigger one is refused whole). Anything else is left out, and counted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path

from rclone_jupyter.model.known import RealFolders, local_name, unrepresentable

MANIFEST = ".rclone-jupyter/tree.json"
_MASK = os.umask(0)
os.umask(_MASK)
# What a file restored by rclone gets: the mode that needs no entry.
DEFAULT_MODE = 0o666 & ~_MASK
PERMISSIONS = 0o777  # the bits kept: never setuid, setgid or sticky
MAX_BYTES = 16 * 1024 * 1024  # about 200,000 entries; a bigger manifest is refused, never read whole
_OCTAL = re.compile(r"[0-7]{1,4}\Z")


@dataclasses.dataclass
class Parsed:
    """A manifest read from the bucket: the entries kept, and what was wrong (entries left out or cut down)."""

    modes: dict[str, int] = dataclasses.field(default_factory=dict)
    folders: set[str] = dataclasses.field(default_factory=set)
    problems: list[str] = dataclasses.field(default_factory=list)


def file_mode(root: Path, key: str, folders: RealFolders | None = None) -> int | None:
    """The permission bits of a regular file in the data folder (None: not a regular file, gone, or below a
    link: a mode is never read or applied through one). `folders`: as in known.local_version."""
    if (folders or RealFolders(root)).under_link(local_name(key)):
        return None
    try:
        st = os.lstat(os.path.join(root, local_name(key)))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return permissions(st.st_mode)


def permissions(st_mode: int) -> int | None:
    """The mode the manifest keeps of what an lstat saw: a regular file's permission bits, else None."""
    return st_mode & PERMISSIONS if stat.S_ISREG(st_mode) else None


class Manifest:
    """The manifest as this container knows it: {object name: mode}, {empty folder}, and whether it must be
    uploaded. Folder names are encoded like object names (known.encode_name)."""

    def __init__(self) -> None:
        self.modes: dict[str, int] = {}
        self.folders: set[str] = set()
        self.dirty = False

    def keep_folder(self, name: str, empty: bool) -> None:
        """The data folder's folder `name` is there and empty (kept), or not (its entry goes)."""
        if empty and name not in self.folders:
            self.folders.add(name)
            self.dirty = True
        elif not empty and name in self.folders:
            self.folders.discard(name)
            self.dirty = True

    def note(self, key: str, mode: int | None) -> None:
        """The data folder's file `key` has `mode` now."""
        if mode is None:
            return
        if mode == DEFAULT_MODE:
            if self.modes.pop(key, None) is not None:
                self.dirty = True
        elif self.modes.get(key) != mode:
            self.modes[key] = mode
            self.dirty = True

    def forget(self, key: str) -> None:
        if self.modes.pop(key, None) is not None:
            self.dirty = True

    def wanted(self, key: str) -> int:
        return self.modes.get(key, DEFAULT_MODE)

    def dump(self) -> str:
        return json.dumps({"version": 1, "modes": {k: f"{v:04o}" for k, v in sorted(self.modes.items())},
                           "folders": sorted(self.folders)}, indent=0) + "\n"

    def apply(self, root: Path, key: str) -> None:
        """Give the data folder's file the mode the manifest says (file_mode checked it is a regular file)."""
        mode = self.wanted(key) & PERMISSIONS
        if file_mode(root, key) not in (None, mode):
            os.chmod(os.path.join(root, local_name(key)), mode)


def parse(text: str) -> Parsed:
    """Given a manifest's JSON from the bucket, return its valid entries and what was left out.

    A manifest that is not JSON, nested too deep to parse, or not an object is empty (one rejection).
    """
    out = Parsed()
    if len(text) > MAX_BYTES:
        out.problems.append(f"the whole manifest: over {MAX_BYTES // (1024 * 1024)} MiB")
        return out
    try:
        data = json.loads(text or "{}")
    except (ValueError, RecursionError) as exc:
        out.problems.append(f"the whole manifest: not JSON that can be read ({type(exc).__name__})")
        return out
    if not isinstance(data, dict):
        out.problems.append("the whole manifest: not a JSON object")
        return out
    modes, folders = data.get("modes") or {}, data.get("folders") or []
    if not isinstance(modes, dict):
        out.problems.append("modes: not a JSON object")
        modes = {}
    if not isinstance(folders, list):
        out.problems.append("folders: not a JSON list")
        folders = []
    for name, value in modes.items():
        why = unrepresentable(name) or (None if isinstance(value, str) and _OCTAL.match(value)
                                        else "its mode is not an octal string")
        if why:
            out.problems.append(f"{name!r}: {why}")
        else:
            out.modes[name] = int(value, 8) & PERMISSIONS
            if int(value, 8) & ~PERMISSIONS:
                out.problems.append(f"{name!r}: setuid, setgid or sticky bits in {value}: only {out.modes[name]:04o} "
                                    "applied")
    for name in folders:
        why = "not a string" if not isinstance(name, str) else unrepresentable(name)
        if why:
            out.problems.append(f"{name!r}: {why}")
        else:
            out.folders.add(name)
    return out
