"""HTTP over a unix socket in a private folder: the rcd's rc calls and the daemon's control channel.

A unix socket bypasses any network authentication: the 0700 folder it lives in is the authentication.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
from collections.abc import Iterator
from pathlib import Path

# sun_path holds 108 bytes on Linux; a longer path is reached through the folder's file descriptor.
MAX_SOCKET_PATH = 100


@contextlib.contextmanager
def socket_address(path: str | os.PathLike) -> Iterator[str]:
    """The address to bind or connect to for `path`: the path itself, or the same file through
    /proc/self/fd/N when the path is too long for a socket address (a deep state folder)."""
    path = Path(path)
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client's connection, to a unix socket instead of a host and port."""

    def __init__(self, path: str | os.PathLike, timeout: float | None = None):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            if self.timeout is not None:
                sock.settimeout(self.timeout)
            with socket_address(self._path) as address:
                sock.connect(address)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
