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

The views are made on the memory filesystem (/dev/shm) when there is one (views_home): a view is a link per
file, made and removed at every push, and on a disk filesystem each link is an inode to allocate. ext4 slows
down after many recent deletions: 5 us a link at first, 50-80 us once a few views came and went, which was
most of the push's CPU in a burst of 100,000 new files.
"""

from __future__ import annotations

import atexit
import errno
import os
import resource
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path

from rclone_jupyter import pid_dirs
from rclone_jupyter.model.known import LINK_SUFFIX, Version, local_name

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
MEMORY_FS = "/dev/shm"
HOME_PREFIX = "rj-views-"  # this process's folder of views there (pid_dirs: cleared once the process is gone)
_FULL = {errno.ENOSPC, errno.EDQUOT}


def _is_memory_fs(path: str) -> bool:
    """True if `path` is the mount point of a tmpfs (what containers have at /dev/shm)."""
    try:
        with open("/proc/self/mounts", encoding="utf-8", errors="replace") as mounts:
            return any(fields[1] == path and fields[2] == "tmpfs"
                       for fields in (line.split() for line in mounts) if len(fields) > 2)
    except OSError:
        return False


class _Home:
    """Where this process makes its views: its own private folder on the memory filesystem, made at first use
    and removed at exit; the caller's folder (the state directory's scratch) when there is none, or once it
    is full."""

    def __init__(self, memory_fs: str = MEMORY_FS):
        self.memory_fs = memory_fs
        self._lock = threading.Lock()
        self._path: str | None = None
        self._unusable = False

    def folder(self, fallback: Path) -> Path:
        with self._lock:
            if self._path is None and not self._unusable:
                self._path = self._make()
                self._unusable = self._path is None
            return Path(self._path) if self._path is not None else fallback

    def _make(self) -> str | None:
        if not _is_memory_fs(self.memory_fs):
            return None
        try:
            path = pid_dirs.make(HOME_PREFIX, self.memory_fs)
        except OSError:
            return None
        atexit.register(shutil.rmtree, path, True)
        return path

    def full(self, path: Path) -> None:
        """A view in `path` could not take another link (the memory filesystem is full): new views go to the
        fallback from now on."""
        with self._lock:
            if self._path is not None and path.parent == Path(self._path):
                self._unusable = True
                self._path = None


views_home = _Home()


def clear_stale_homes() -> int:
    """Remove the view folders of processes that are gone (a daemon killed with SIGKILL)."""
    return pid_dirs.clean_stale(HOME_PREFIX, MEMORY_FS)


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
    them (a hard link of the rclone config is the same file as the config). `parent`: the private folder the
    view is made in when there is no memory filesystem (views_home).
    """

    def __init__(self, data_dir: Path, parent: Path, private: Iterable[Path] = ()):
        self.data_dir = data_dir
        self.parent = parent
        self.files: list[str] = []  # object names of regular files (read through their descriptor)
        self.links: list[str] = []  # object names of links (copied as links)
        self.refused: list[str] = []
        self._private = _identities(private)
        self._fds: dict[str, int] = {}  # object name of a regular file -> its descriptor
        self._folders: dict[str, int] = {}  # data folder path -> descriptor of that folder
        self._made: dict[str, None] = {}  # the view's folders ("" itself), each made once, in the order made
        self._fd_prefix = f"/proc/{os.getpid()}/fd/"
        self.path: Path | None = None
        self._root = ""  # self.path as text: a view is one link per file (no Path object per file)

    def open(self) -> UploadView:
        self.path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=views_home.folder(self.parent)))
        self._root = str(self.path)
        self._made = {"": None}
        return self

    def __enter__(self) -> UploadView:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close every descriptor and remove the folder (the upload that read it is over)."""
        for fd in [*self._fds.values(), *self._folders.values()]:
            os.close(fd)
        self._fds.clear()
        self._folders.clear()
        if self.path is not None:
            self._remove()
            self.path = None

    def _remove(self) -> None:
        """Remove the view: the links it made and its folders, deepest first (no listing of what is known)."""
        try:
            for key in [*self.files, *self.links]:
                os.unlink(os.path.join(self._root, local_name(key)))
            for folder in reversed(self._made):
                os.rmdir(os.path.join(self._root, folder) if folder else self._root)
        except OSError:
            shutil.rmtree(self.path, ignore_errors=True)  # what was not made as told: removed whatever it is

    def version(self, key: str) -> Version | None:
        """The version now of the file opened for `key` (it may have been written to while it was read), or
        None if `key` is no regular file of the view."""
        fd = self._fds.get(key)
        if fd is None:
            return None
        st = os.fstat(fd)
        return Version(st.st_size, st.st_mtime_ns)

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
        self._fds[key] = fd
        try:
            self._link(folder, rel, self._fd_prefix + str(fd))
        except OSError:
            del self._fds[key]
            os.close(fd)
            raise
        self.files.append(key)
        return True

    def _link(self, folder: str, rel: str, target: str) -> str:
        """Make the view's link `rel` (in its `folder`) to `target`, the folders first; return its path."""
        name = os.path.join(self._root, rel)
        try:
            if folder not in self._made:
                self._make_folders(folder)
            os.symlink(target, name)
        except OSError as exc:
            if exc.errno in _FULL:
                views_home.full(self.path)  # the file is tried again at the next push, in a view on disk
            raise
        return name

    def _make_folders(self, folder: str) -> None:
        """Make the view's `folder` and those on its way not made yet."""
        parent = folder.rpartition("/")[0]
        if parent not in self._made:
            self._make_folders(parent)
        os.mkdir(os.path.join(self._root, folder))
        self._made[folder] = None

    def _add_link(self, key: str, rel: str, name: str, dir_fd: int) -> bool:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            return False
        target = self._link(rel.rpartition("/")[0], rel, os.readlink(name, dir_fd=dir_fd))
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
