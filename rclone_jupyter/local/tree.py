"""The data folder's side: walking it, placing downloads in it, and the names it can and cannot hold.

Nothing here reads or writes through a symbolic link: links are listed as links (known.key_of), never
entered, and `place` moves a download into place with O_NOFOLLOW on every folder of its way.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Callable, Container, Mapping
from pathlib import Path

from rclone_jupyter.errors import PersistenceError
from rclone_jupyter.model.filters import is_noise
from rclone_jupyter.model.known import (LINK_SUFFIX, Version, ancestors, encode_name, folders_of,  # noqa: F401
                                        key_and_version, key_of, local_version, maybe_unrepresentable,
                                        not_an_object, unrepresentable, unsaveable)  # (unrepresentable's home was here)

# Jupyter-style temporary names, so the watcher and every sync ignore the staging folders of downloads.
STAGING_PREFIX = ".~rclone-jupyter-incoming-"


def walk_versions(root: Path, rel: str = "", on_unsaveable: Callable[[str, str], None] | None = None, *,
                  seen: Container[str] = ()) -> dict[str, Version]:
    """{object name: (size, mtime_ns)} of every regular file and link under root/rel (noise left out).

    Links are listed, never followed. A file or folder whose name cannot be an object name (known.unsaveable)
    is left out, and told to `on_unsaveable(path, why)`. Object names in `seen` (looked at by the caller a
    moment ago) are left out without another look.
    """
    out: dict[str, Version] = {}
    base = str(root)
    top = os.path.join(base, rel) if rel else base
    for dirpath, dirnames, filenames in os.walk(top):
        # The data folder path of this folder: what follows the root in the walk's own path (os.path.relpath
        # costs far more, once per file of a burst).
        folder = dirpath[len(base) + 1:].replace(os.sep, "/")
        prefix = folder + "/" if folder else ""
        kept = []
        for name in dirnames:
            relpath = prefix + name
            if os.path.islink(os.path.join(dirpath, name)):
                filenames.append(name)  # a link to a folder is a link, not a folder to enter
            elif is_noise(relpath):
                continue
            elif why := unsaveable(relpath):
                if on_unsaveable is not None:
                    on_unsaveable(relpath, why)
            else:
                kept.append(name)
        dirnames[:] = kept
        for name in filenames:
            relpath = prefix + name
            if is_noise(relpath):
                continue
            if why := not_an_object(root, relpath):
                if on_unsaveable is not None:
                    on_unsaveable(relpath, why)
                continue
            if seen and ((key := encode_name(relpath)) in seen or key + LINK_SUFFIX in seen):
                continue
            found = key_and_version(root, relpath)  # os.walk entered real folders only
            if found is not None:
                out[found[0]] = found[1]
    return out


def is_empty_folder(path: Path) -> bool:
    """A real folder (not a link) with nothing in it but noise (checkpoints, temporary files)."""
    try:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        return all(is_noise(name) for name in os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return False


def walk_folders(root: Path, rel: str) -> set[str]:
    """Every real folder at and under root/rel (noise and links left out), as data folder paths."""
    out = {rel}
    for dirpath, dirnames, _filenames in os.walk(os.path.join(root, rel)):
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))
                       and not is_noise(os.path.relpath(os.path.join(dirpath, d), root).replace(os.sep, "/"))
                       and not unsaveable(d)]
        for name in dirnames:
            out.add(os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/"))
    return out


def place(root: Path, staged: Path, rel: str, *, replace: bool = True) -> bool:
    """Move `staged` to root/rel, creating folders on the way, never through a link. False if refused.

    `replace=False`: never over anything already at root/rel, not even something made a moment ago (a file
    the user wrote while this one was on its way): the name is taken with a hard link, which fails if it
    exists, and the staged name is then removed. The file appears under its name whole, in one step.
    """
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                os.mkdir(part, dir_fd=fd)
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except OSError:  # ELOOP (a link) or ENOTDIR (a file)
                return False
            os.close(fd)
            fd = nfd
        try:
            target = os.lstat(parts[-1], dir_fd=fd)
            if stat.S_ISDIR(target.st_mode):
                return False  # a folder has the name now: never replaced by a file
        except FileNotFoundError:
            pass
        else:
            if not replace:
                return False
        if replace:
            os.rename(staged, parts[-1], dst_dir_fd=fd)
            return True
        try:
            os.link(staged, parts[-1], dst_dir_fd=fd, follow_symlinks=False)
        except FileExistsError:
            return False
        os.unlink(staged)
        return True
    finally:
        os.close(fd)


MAX_LINK_TARGET = 4095  # bytes: PATH_MAX less the NUL; a longer link target cannot be made


def cannot_hold(listing: Mapping[str, Version], keep: Callable[[str], bool] | None = None) -> dict[str, str]:
    """{object name: why} for the objects of a listing ({name: (size, time)}; with `keep`, only the names it
    keeps) the data folder cannot hold, whatever else the bucket has.

    A bad name (unrepresentable), an object below a link object, a file whose name other objects use as a
    folder (`x` beside `x/y.txt`: the folder wins, it holds more), a link object whose target is empty or
    longer than a link can be. Each one is skipped, never fatal: the rest is restored. Every reconcile asks
    it of the whole listing: the folders are looked at once each, not once per object in them.
    """
    names = [name for name in listing if keep(name)] if keep is not None else listing
    links = {name[: -len(LINK_SUFFIX)] for name in names if name.endswith(LINK_SUFFIX)}
    parents = {name.rpartition("/")[0] for name in names}
    folders = folders_of(parents) | parents
    folders.discard("")
    # Why each folder cannot hold anything: a link object on its way (or at it).
    below = {parent: below_link(parent + "/", links) if parent else None for parent in parents} if links else {}
    # The few names any rule may refuse, picked in one pass each (a million names: a Python loop with every
    # rule in it cost a second at every reconcile); only those are looked at rule by rule.
    suspects = [name for name in names if maybe_unrepresentable(name) or name in folders]
    if links:
        suspects += [name for name in names if name.endswith(LINK_SUFFIX) or below[name.rpartition("/")[0]]]
    out: dict[str, str] = {}
    for name in dict.fromkeys(suspects):
        why = unrepresentable(name) or (below[name.rpartition("/")[0]] if below else None)
        if not why and name in folders:
            why = f"other objects use it as a folder ({name}/...), which is what is restored"
        if not why and name.endswith(LINK_SUFFIX) and not 0 < listing[name].size <= MAX_LINK_TARGET:
            why = f"a link object must hold a target of 1 to {MAX_LINK_TARGET:,} bytes; it has {listing[name].size}"
        if why:
            out[name] = why
    return out


def below_link(key: str, links: set[str]) -> str | None:
    """Why an object cannot be restored because a link object names a folder on its way, or None."""
    for folder in ancestors(key):
        if folder in links:
            return f"{folder} is a symbolic link in the bucket folder (nothing is written through one)"
    return None


def clear_staging(root: Path) -> None:
    """Downloads cut off by a killed daemon: their staging folders are not the user's."""
    for entry in os.scandir(root):
        if entry.name.startswith(STAGING_PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


def conflict_name(rel: str, taken: Callable[[str], bool]) -> str:
    """The first free `stem.conflictN.ext` beside `rel`: the names bisync gives its conflict losers."""
    folder, _, name = rel.rpartition("/")
    stem, ext = os.path.splitext(name)
    if not stem:  # a dotfile such as '.env'
        stem, ext = name, ""
    for n in range(1, 10_000):
        candidate = f"{stem}.conflict{n}{ext}"
        candidate = f"{folder}/{candidate}" if folder else candidate
        if not taken(candidate):
            return candidate
    raise PersistenceError(f"too many conflict copies of {rel}")


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the disk that holds `path`."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
