"""What an upload reads: each file the push looked at, opened through real folders only, by its descriptor.

rclone reads files by path. Between the push's look at a file and rclone opening it, a folder on its way can
become a link (a folder moved out and a link left in its place, a tool swapping a checkout): rclone would
then read whatever the link points to, the private rclone config with its secret included, and upload it under
the file's name. So the push never hands rclone a data folder path. It opens each file itself, walking down from
the data folder with O_NOFOLLOW on every part, and hands rclone a private folder (in the state directory)
that holds, under each file's name, a link to that open descriptor (/proc/<pid>/fd/<n>), read with the local
backend's copy_links. rclone reads exactly the file that was opened, whatever its path names meanwhile, and
nothing outside the data folder can be reached from it. A link the user made is copied into the folder as a
link (its target and its time) and uploaded as a link object, never followed.

Nothing in the data folder is touched (a hard link would change the file's link count: a change event for
every file uploaded).
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rclone_jupyter.model.known import LINK_SUFFIX, local_name

# The most files one view holds open at once; a larger push is sent in several views, one after another.
MOST_FILES = 4096
# What the open can say of a path that simply is not a regular file reached through real folders (any more):
# gone, a folder on the way became a link or a file, or the name is a link now. The file's next change event
# (its delete, its folder's move) tells the push what happened.
_NOT_THERE = {errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EISDIR, errno.ENXIO}


def capacity() -> int:
    """How many files a view may hold open: a quarter of the process's descriptor limit, at most MOST_FILES."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MOST_FILES
    return max(16, min(MOST_FILES, soft // 4))


PREFIX = "upload-"


def clear_views(parent: Path) -> None:
    """Remove the views a killed daemon left in `parent` (links only: nothing in them is the user's)."""
    for entry in os.scandir(parent):
        if entry.name.startswith(PREFIX) and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)


class Refused(Exception):
    """A file that is the same file as one of the private ones (a hard link to the rclone config)."""


def _identities(paths: Iterable[Path]) -> set[tuple[int, int]]:
    """(device, inode) of each file, and of each file directly in each folder, among `paths`."""
    out = set()
    for path in paths:
        try:
            entries = list(os.scandir(path)) if os.path.isdir(path) else [path]
            for entry in entries:
                st = os.stat(entry, follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    out.add((st.st_dev, st.st_ino))
        except FileNotFoundError:
            continue
    return out


class UploadView:
    """A private folder of what one upload reads. Use as a context manager; `add` each object name first.

    `private`: files (or folders of files) that must never be uploaded, under whatever name the data folder holds
    them (a hard link of the rclone config is the same file as the config).
    """

    def __init__(self, data_dir: Path, parent: Path, private: Iterable[Path] = ()):
        self.data_dir = data_dir
        self.parent = parent
        self.files: list[str] = []  # object names of regular files (read through their descriptor)
        self.links: list[str] = []  # object names of links (copied as links)
        self.refused: list[str] = []
        self._private = _identities(private)
        self._fds: list[int] = []
        self._folders: dict[str, int] = {}  # data folder path -> descriptor of that folder
        self.path: Path | None = None

    def open(self) -> UploadView:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self.parent))
        return self

    def __enter__(self) -> UploadView:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every descriptor and remove the folder (the upload that read it is over)."""
        for fd in [*self._fds, *self._folders.values()]:
            os.close(fd)
        self._fds.clear()
        self._folders.clear()
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)
            self.path = None

    def add(self, key: str) -> bool:
        """Put the data folder's object `key` in the view: True if it is there, a regular file or a link
        (as the name says) reached through real folders. False if it is not (any more). Raises Refused for a
        private file, OSError if it cannot be read (the upload is tried again later)."""
        assert self.path is not None, "add inside `with`"
        rel = local_name(key)
        folder, _, name = rel.rpartition("/")
        try:
            dir_fd = self._folder(folder)
            if key.endswith(LINK_SUFFIX):
                return self._add_link(key, rel, name, dir_fd)
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in _NOT_THERE:
                return False
            raise
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # a fifo or a device: nothing to read
            os.close(fd)
            return False
        if (st.st_dev, st.st_ino) in self._private:
            os.close(fd)
            self.refused.append(key)
            raise Refused(rel)
        self._fds.append(fd)
        target = self._place(rel)
        os.symlink(f"/proc/{os.getpid()}/fd/{fd}", target)
        self.files.append(key)
        return True

    def _add_link(self, key: str, rel: str, name: str, dir_fd: int) -> bool:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            return False
        target = self._place(rel)
        os.symlink(os.readlink(name, dir_fd=dir_fd), target)
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
        self.links.append(key)
        return True

    def _folder(self, folder: str) -> int:
        """A descriptor of the data folder's `folder`, opened part by part without following any link."""
        if folder in self._folders:
            return self._folders[folder]
        if folder:
            parent, _, name = folder.rpartition("/")
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=self._folder(parent))
        else:
            fd = os.open(self.data_dir, os.O_RDONLY | os.O_DIRECTORY)
        self._folders[folder] = fd
        return fd

    def _place(self, rel: str) -> Path:
        assert self.path is not None
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        return target
