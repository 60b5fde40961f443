"""What the engine needs from the bucket folder: one small interface (Litestream's ReplicaClient).

The engine's collaborators (engine/restore.py, engine/push.py, engine/reconcile.py) take a Store and never
run rclone themselves. There is one implementation, over rclone (rclone/store.py): against the real clouds,
and in tests against rclone's local backend (a real rclone against a real folder).

Names are object names relative to the bucket folder (model/known.py). Every call either does all it says or
raises RcloneError (`retryable` says whether trying again may help).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from rclone_jupyter.model.known import Version


@runtime_checkable
class Job(Protocol):
    """One background transfer of a large file. Until it is waited for (or cancelled) it keeps its transport
    alive; wait for it, or ask its progress, at least once a minute (rclone forgets a finished job after 60 s)."""

    id: int

    def progress(self) -> tuple[int, int]:
        """(bytes done, bytes in all; 0 while unknown)."""

    def cancel(self) -> None: ...

    def wait(self, timeout: float | None = None) -> None:
        """Return when the transfer is done; raise RcloneError if it failed."""


@runtime_checkable
class Store(Protocol):
    display: str  # what the user sees for it (no secret)

    def list(self, folder: str = "", *, missing_ok: bool = True) -> dict[str, Version]:
        """Every file under `folder` (LIST requests only, with the server's times); a missing folder is empty,
        or with `missing_ok=False` an error."""

    def sizes(self, folder: str) -> dict[str, int]:
        """{name: size} of every object under `folder`, LIST requests only (no times); missing: empty."""

    def stat(self, names: Iterable[str]) -> dict[str, Version]:
        """These objects now, with rclone's modtime (a HEAD each); missing ones are left out."""

    def upload(self, source: Path, names: Iterable[str], *, retry: bool = True, follow_links: bool = False) -> None:
        """Upload exactly these names from the upload view `source` (local/upload_view.py): with
        `follow_links` its links are read through to the files, else uploaded as link objects (`retry=False`:
        one attempt)."""

    def download(self, names: Iterable[str], into: Path) -> None:
        """Download exactly these objects into the (staging) folder `into`."""

    def delete(self, names: Iterable[str]) -> None:
        """Delete exactly these objects."""

    def read(self, name: str, what: str, head: int | None = None) -> str | None:
        """One small object's content (its first `head` bytes if given); None if it is not there."""

    def write(self, name: str, text: str, what: str) -> None:
        """Write one small object."""

    def copy(self, source: str, target: str) -> None:
        """A server-side copy of one object to another name."""

    def copy_many(self, names: Iterable[str], source_folder: str, target_folder: str) -> None:
        """Server-side copies of `source_folder/name` to `target_folder/name` for each name ("" is the bucket
        folder itself): the trash's way in and out (engine/trash.py)."""

    def move_many(self, names: Iterable[str], source_folder: str, target_folder: str) -> None:
        """copy_many, then each source object deleted (a delete that keeps what it deletes)."""

    def start_upload(self, source: Path, name: str) -> Job:
        """Upload one large file from the upload view `source` (its link read through) in the background."""

    def start_download(self, name: str, into: Path) -> Job:
        """Download one large object into the folder `into` in the background."""
