"""The two moves every phase shares, each recorded in the baseline when it lands: upload named files from the
data folder, and download objects into it (staged, placed only where the data folder is as expected, never
through a link)."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.refusals import narrow_down
from rclone_jupyter.engine.store import Store
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.tree import STAGING_PREFIX, place
from rclone_jupyter.local.upload_view import Refused, UploadView, capacity
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import (LINK_SUFFIX, Known, RealFolders, Version, dated_between, encode_name,
                                        local_name, local_version, same)
from rclone_jupyter.rclone.rcd import changed_while_read

log = logging.getLogger(__name__)


class PartlyPushed(RcloneError):
    """Some files of a push were refused; the others landed. `paths`: the data folder paths still unsaved."""

    def __init__(self, message: str, paths: set[str]):
        super().__init__(message, exit_code=None, retryable=True)
        self.paths = paths


@dataclasses.dataclass
class Transfers:
    store: Store
    baseline: Baseline
    data_dir: Path
    bucket: Bucket  # what landed, when a file changed while it was uploaded
    manifest: ManifestSync  # a placed download gets its mode
    scratch: Callable[[], Path]  # the private folder the upload views are made in (local/upload_view.py)
    # Files (and folders of files) never uploaded, whatever name they have here: the rclone config, the keys.
    private: tuple[Path, ...] = ()
    # Told of a data folder path that is never uploaded (the pusher lists it as not saved while it is there).
    cannot_save: Callable[[str, str], None] = lambda rel, why: log.warning("not saving %s: %s", rel, why)
    # {name: the file's version at its first upload attempt cut short since it last landed}: see cut_short.
    attempts: dict[str, Version] = dataclasses.field(default_factory=dict)

    def upload(self, keys: list[str], local: Mapping[str, Version | None]) -> None:
        """Upload exactly these objects from the data folder, and know them as uploaded.

        rclone reads each file through a private view (local/upload_view.py): the file as opened through real
        folders, never what a path names after a folder on its way became a link. A name that is no regular
        file or link there any more is not uploaded (its delete or move event follows).

        If the call fails for a batch, the bucket is asked what landed (rclone goes on with the rest of a batch),
        and each file that did not is tried on its own: one file the storage refuses (a name it cannot hold, say)
        must not keep every other change of the batch from being saved. The ones that fail stay pending, and
        the error names them.
        """
        failed: list[str] = []
        errors: list[str] = []
        size = capacity()
        for start in range(0, len(keys), size):
            with UploadView(self.data_dir, self.scratch(), self.private) as view:
                unread = self._open(view, keys[start:start + size])
                if unread:
                    failed += unread
                    errors.append(f"cannot read {local_name(unread[0])}")
                sent = view.files + view.links
                try:
                    self._send(view, sent)
                except RcloneError as exc:
                    if changed_while_read(str(exc)):
                        # Not the storage's fault: the syncer sends these again once they are quiet (an INFO,
                        # not a failure). What lands of them is ours.
                        self.cut_short({key: local[key] for key in self._keep_what_landed(sent, local)})
                        raise
                    if len(sent) == 1 or not exc.retryable:
                        self._keep_what_landed(sent, local)
                        raise
                    # rclone went on with the rest of the batch: what did not land is what failed (a name the
                    # storage refuses, the files in flight when a connection broke), and only those are tried
                    # again, one at a time. Sending each file of the batch again cost an rc call and a whole
                    # upload per file: a batch of thousands uploaded twice, for one broken connection.
                    try:
                        landed = self.bucket.versions(sent, self.baseline)
                    except RcloneError:
                        self.cut_short({key: local[key] for key in sent})  # any of them may have landed
                        raise exc from None  # the bucket cannot say now: all stay pending, tried again later
                    for key in self._record_landed(sent, local, landed):
                        try:
                            self._send(view, [key], retry=False)
                        except RcloneError:
                            failed.append(key)
                            self.cut_short({key: local[key]})  # what the failed call sent may have landed
                        else:
                            self._landed([key], local, view)
                    errors.append(str(exc))
                    continue
                self._landed(sent, local, view)
        if failed:
            raise PartlyPushed(f"push failed for {len(failed)} of {len(keys)} file(s) (e.g. "
                               f"{', '.join(repr(local_name(k)) for k in failed[:3])}): {'; '.join(errors)}",
                               {local_name(k) for k in failed})

    def _open(self, view: UploadView, keys: list[str]) -> list[str]:
        """Add each name to the view; return those that are there but cannot be read now (tried again later)."""
        unread = []
        for key in keys:
            try:
                view.add(key)
            except Refused:
                self.cannot_save(local_name(key), "it is the same file as a private one of the state directory "
                                 "(a hard link to the rclone config or a key), which the bucket must never hold")
            except OSError as exc:
                log.warning("cannot read %s to upload it (%s); kept pending", local_name(key), exc.strerror)
                unread.append(key)
        return unread

    def _send(self, view: UploadView, keys: list[str], *, retry: bool = True) -> None:
        """One upload call for the files among `keys` (read through their descriptors), one for the links."""
        is_link = set(view.links)
        files = [k for k in keys if k not in is_link]
        links = [k for k in keys if k in is_link]
        if files:
            self.store.upload(view.path, files, retry=retry, follow_links=True)
        if links:
            self.store.upload(view.path, links, retry=retry)

    def _keep_what_landed(self, keys: list[str], local: Mapping[str, Version | None]) -> list[str]:
        """After a failed upload call: know the files of it that landed, and return the rest.

        The others of a batch land though one file failed (it changed while it was read), and one deleted here
        meanwhile (an SQLite journal comes and goes with every transaction) is never sent again: unknown, its
        delete would leave its object in the bucket for good, and every fresh container would restore it. An
        object there now that is not the version known before this call is the one this call sent (the push
        looked at the bucket just before it), also when the file changed between that look and the read."""
        try:
            landed = self.bucket.versions(keys, self.baseline) if keys else {}
        except RcloneError:
            # The bucket cannot be asked now (an outage that began during the call): any of them may have
            # landed. Remembered as attempts, so a delete made before the bucket is back still removes one.
            self.cut_short({key: local[key] for key in keys})
            return keys
        return self._record_landed(keys, local, landed)

    def _record_landed(self, keys: list[str], local: Mapping[str, Version | None],
                       landed: Mapping[str, Version]) -> list[str]:
        """Know those of `keys` that `landed` (the bucket's versions now) shows as this call's; return the rest."""
        rest = []
        for key in keys:
            version, before = landed.get(key), self.baseline.get(key)
            if version is not None and (before is None or not same(version, before.version)):
                self.baseline.record(key, local[key] if same(version, local[key]) else version)
                self.settled([key])
            else:
                rest.append(key)
        return rest

    def _landed(self, keys: list[str], local: Mapping[str, Version | None], view: UploadView) -> None:
        """These uploads landed: know each as uploaded."""
        # A file written to while it was uploaded: the version that landed is not the one we listed, and
        # recording ours would make the next push see a change 'in the bucket' (a false conflict). Ask the
        # bucket what landed for those files only. A file is looked at through the descriptor rclone read (one
        # fstat); a link, which the view copied, by its path.
        real = RealFolders(self.data_dir)

        def now(key: str) -> Version | None:
            version = view.version(key)
            return version if version is not None else local_version(self.data_dir, key, folders=real)

        moved = [key for key in keys if not same(now(key), local[key])]
        landed = self.bucket.versions(moved, self.baseline) if moved else {}
        moved_set = set(moved)
        recorded = []
        for key in keys:
            version = landed.get(key) if key in moved_set else local[key]
            if version is not None:
                self.baseline.record(key, version)
                recorded.append(key)
        self.settled(recorded)

    def cut_short(self, before: Mapping[str, Version | None]) -> None:
        """Uploads of these files were cut short (the file changed while rclone read it, a newer version
        stopped the job, or the call failed and the bucket could not say what landed): what they sent may
        have landed, or still land even seconds later, since rclone notices a change only after the last byte
        went and a stopped upload's bytes already handed to the network still arrive. Remember each file's
        version at its first such attempt (see `known_with_own`)."""
        for key, was in before.items():
            if was is not None:
                self.attempts.setdefault(key, was)

    def settled(self, keys: list[str]) -> None:
        """No attempt of these names is pending any more: what landed is recorded, or the object is deleted
        or known to be absent."""
        for key in keys:
            self.attempts.pop(key, None)

    def known_with_own(self, local: Mapping[str, Version | None], theirs: Mapping[str, Version]) -> Mapping[str, Known]:
        """The baseline, where the bucket holds what one of our own cut-short attempts sent: such an object is
        this container's own (a moment of the file as it was being written), not a change made elsewhere. The
        push must not take it for a conflict, and a delete here removes it. It is ours when its time lies
        between the file's time at the first attempt and the file's time now (the clock's, once it is gone)."""
        own: dict[str, Known] = {}
        for key, was in self.attempts.items():
            bucket, now = theirs.get(key), local.get(key)
            latest = now.mtime_ns if now is not None else time.time_ns()
            if bucket is not None and dated_between(bucket, was.mtime_ns, latest):
                own[key] = Known(bucket.size, bucket.mtime_ns, None)
        return collections.ChainMap(own, self.baseline) if own else self.baseline

    def upload_one(self, key: str) -> None:
        """Upload one data folder file as it is now (a conflict copy under its new name)."""
        self.upload([key], {key: local_version(self.data_dir, key)})

    def download(self, targets: Mapping[str, str], *, expect: Mapping[str, Version | None],
                 listing: Mapping[str, Version] | None = None,
                 refused: Callable[[dict[str, str]], None] | None = None) -> dict[str, Version]:
        """Bring objects into the data folder: {object name: data folder path}. Return what was placed.

        An object placed under its own name is known from then on (as `listing` shows it, if given).

        `refused` (the reconcile, the start): a download the storage refused for good (a 403 on one object) is
        narrowed down to the objects it refuses, one at a time; those are told to `refused` ({name: why}) and
        left out, the others placed. Without it the failure is raised.

        Downloads land in a private staging folder first, then each is moved into place only if the data
        folder's version there is still `expect[path]` (None: nothing there), and only through real folders:
        nothing is written through a link, and a file the user changed meanwhile is never overwritten (its
        push, queued, meets the bucket's version as a conflict and both are kept).
        """
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.data_dir))
        placed: dict[str, Version] = {}
        try:
            self._fetch(targets, staging, refused)
            for key, rel in sorted(targets.items()):
                staged = staging / local_name(key)
                try:
                    staged_st = os.lstat(staged)
                except FileNotFoundError:
                    continue  # gone from the bucket meanwhile
                suffix = LINK_SUFFIX if key.endswith(LINK_SUFFIX) else ""
                wanted = expect.get(rel)
                if (os.path.lexists(self.data_dir / rel) if wanted is None
                        else not same(local_version(self.data_dir, encode_name(rel) + suffix), wanted)):
                    log.info("%s changed here while it was downloaded from %s; keeping this version", rel,
                             self.store.display)
                    continue
                if place(self.data_dir, staged, rel):
                    size = (len(os.fsencode(os.readlink(self.data_dir / rel))) if stat.S_ISLNK(staged_st.st_mode)
                            else staged_st.st_size)
                    version = Version(size, staged_st.st_mtime_ns)
                    placed[encode_name(rel) + suffix] = version
                    if rel == local_name(key):
                        self.baseline.record(key, version, (listing or {}).get(key))
                        self.manifest.manifest.apply(self.data_dir, key)
                else:
                    log.warning("not writing %s: a folder on its way is a link or a file; it stays in %s",
                                rel, self.store.display)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return placed

    def _fetch(self, targets: Mapping[str, str], staging: Path,
               refused: Callable[[dict[str, str]], None] | None) -> None:
        """Download the objects into `staging`; see `download` for `refused`."""
        try:
            self.store.download(targets, staging)
        except RcloneError as exc:
            # rclone copied the others: only what is not there is tried again alone.
            absent = sorted(key for key in targets if not os.path.lexists(staging / local_name(key)))
            narrow_down(exc, self.store, absent, lambda key: self.store.download([key], staging), refused,
                        take_the_rest=len(absent) == len(targets))  # nothing came: maybe a whole folder
