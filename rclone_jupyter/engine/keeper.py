"""What the sync keeps before it replaces: the push asks before each delete and each overwrite, the reconcile
asks to remove what expired. The rules are model/trash.py's; the copies are engine/trash.py's.

State, per remote: when the newest kept overwrite of each file was (the KEEP_EVERY rule), and when the oldest
kept version is (so the reconcile lists the trash only when something may have expired: an idle container
pays nothing for it). Both are learnt from the first listing of the trash, at the first reconcile, and from
this container's own copies; after a restart, the first overwrite of a file is kept again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rclone_jupyter.config.settings import Keep
from rclone_jupyter.engine.trash import TrashFolder
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.model import trash

log = logging.getLogger(__name__)


class Keeper:
    def __init__(self, folder: TrashFolder, keep: Keep, clock: Callable[[], int] = time.time_ns):
        self.folder = folder
        self.keep = keep
        self.clock = clock
        self.last_kept: dict[str, int] = {}  # {key: when its newest replaced version was kept}
        self.oldest_ns: int | None = None  # the oldest version in the trash; None: not listed yet
        self._told_refused = False

    def delete(self, modes: dict[str, int]) -> None:
        """Delete these objects ({key: its mode}), each kept in the trash (moved there) unless keeping is off
        or its trash name would be too long."""
        if not modes:
            return
        kept = {v.key for v in self._copy(modes, trash.DELETED, move=True)} if self.keep.on else set()
        rest = [key for key in modes if key not in kept]
        if rest:
            self.folder.store.delete(rest)

    def before_overwrite(self, modes: dict[str, int]) -> None:
        """Keep the bucket's version of the objects about to be uploaded over ({key: the replaced version's
        mode}), at most one per file per KEEP_EVERY."""
        if not self.keep.on or not modes:
            return
        now = self.clock()
        chosen = trash.overwrites_to_keep(modes, self.last_kept, now, self.keep.every)
        if chosen:
            for version in self._copy({k: modes[k] for k in chosen}, trash.REPLACED, now):
                self.last_kept[version.key] = version.at_ns

    def _copy(self, modes: dict[str, int], kind: str, now: int | None = None, *, move: bool = False
              ) -> list[trash.Kept]:
        at = self.clock() if now is None else now
        try:
            kept = self.folder.keep([trash.Kept(at, key, kind, mode) for key, mode in sorted(modes.items())],
                                    move=move)
        except RcloneError as exc:
            # Nothing is replaced that could not be kept: the change stays pending, and the status says why.
            if exc.retryable:
                raise
            raise RcloneError(f"cannot keep the version it replaces in {trash.TRASH}/ before the sync deletes "
                              f"or overwrites it ({exc}); allow writing under the bucket folder's {trash.TRASH}/, "
                              "or set RCLONE_JUPYTER_KEEP_DAYS=0 to keep nothing", exit_code=exc.rclone_exit_code,
                              retryable=False, output_tail=exc.output_tail) from exc
        if kept and self.oldest_ns is not None:
            self.oldest_ns = min(self.oldest_ns, at)
        return kept

    def expire(self) -> int:
        """Remove the versions older than KEEP_DAYS; list the trash only when one may be (the first time, then
        when the oldest known one is due). Return how many went."""
        if not self.keep.on:
            return 0
        now = self.clock()
        limit = now - int(self.keep.days * 86_400 * 1_000_000_000)
        if self.oldest_ns is not None and self.oldest_ns >= limit:
            return 0
        try:
            versions = self.folder.versions()
            gone = self.folder.expire(versions, now, self.keep.days)
        except RcloneError as exc:
            # Never a reason to hold back the sync: the versions wait for the next reconcile.
            if exc.retryable:
                log.warning("removing expired versions from %s failed (%s); trying again at the next reconcile",
                            self.folder.store.display, exc)
            elif not self._told_refused:  # a no-delete policy, say: say it once
                log.warning("cannot remove versions older than %g days from the trash of %s (%s); allow deleting "
                            "objects under the bucket folder, or remove %s yourself", self.keep.days,
                            self.folder.store.display, exc, trash.TRASH)
                self._told_refused = True
            return 0
        for key, at in trash.newest_overwrites(versions).items():
            self.last_kept[key] = max(at, self.last_kept.get(key, at))
        left = [v.at_ns for v in versions if v.at_ns >= limit]
        self.oldest_ns = min(left) if left else now  # anything newer is this container's own, or another's
        return gone
