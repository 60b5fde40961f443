"""The engine's side of the large lane (daemon/lanes.py): one large file's upload as a background job.

Planned as a push plans it (model/push_plan.py, after one HEAD): only a plain upload goes here; a conflict
(both versions kept), a link or a file already there as it is here goes through the push. Known in the baseline
only once the job succeeded.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from rclone_jupyter.engine.bucket import Bucket
from rclone_jupyter.engine.keeper import Keeper
from rclone_jupyter.engine.manifest_sync import ManifestSync
from rclone_jupyter.engine.store import Job, Store
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.model import push_plan
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.engine.transfers import Transfers
from rclone_jupyter.local.upload_view import Refused, UploadView
from rclone_jupyter.model.known import LINK_SUFFIX, Version, key_of, local_name, local_version, same
from rclone_jupyter.model.manifest import file_mode

log = logging.getLogger(__name__)


@dataclasses.dataclass
class LargeUpload:
    rel: str
    key: str
    version: Version  # the data folder's version when the upload started
    job: Job
    started: float  # time.monotonic()
    view: UploadView  # what the job reads (the file's descriptor): closed when the job has ended
    uploading: set[str]  # LargeUploads.uploading: this key leaves it when the job has ended

    def ended(self) -> None:
        self.view.close()
        self.uploading.discard(self.key)


class LargeUploads:
    def __init__(self, store: Store, baseline: Baseline, data_dir: Path, bucket: Bucket, manifest: ManifestSync,
                 transfers: Transfers, keeper: Keeper, uploading: set[str] | None = None):
        self.store = store
        # The object names of the uploads running now. What one of them landed is this container's own before
        # the job is known to have ended: the reconcile leaves these names alone (engine/reconcile.py), or it
        # would take our own upload for a change made elsewhere and keep both versions.
        self.uploading = uploading if uploading is not None else set()
        self.keeper = keeper  # the version an upload replaces is kept in the trash first (engine/keeper.py)
        self.transfers = transfers  # what our cut-short attempts sent (cut_short, known_with_own)
        self.baseline = baseline
        self.data_dir = data_dir
        self.bucket = bucket
        self.manifest = manifest

    def start(self, rel: str) -> LargeUpload | None:
        """Start the upload of `rel` in the background; None when the push plan (model/push_plan.py) for it is
        no plain upload (a conflict, unchanged, gone), or for a link or a name rclone spells otherwise: the push
        handles those."""
        key = key_of(self.data_dir, rel)
        if key is None or key.endswith(LINK_SUFFIX) or rel != local_name(key):
            return None
        local = {key: local_version(self.data_dir, key)}
        if not push_plan.to_check(local, self.baseline):
            return None
        theirs = self.bucket.versions([key], self.baseline)
        plan = push_plan.plan_uploads(local, self.transfers.known_with_own(local, theirs), theirs)
        for name, version in plan.record.items():  # our own upload, landed in a run that failed later
            self.baseline.record(name, version)
        if key not in plan.upload:
            return None
        view = UploadView(self.data_dir, self.transfers.scratch(), self.transfers.private).open()
        try:
            if not view.add(key):
                view.close()
                return None  # gone, or no regular file through real folders any more: its events follow
            if key in theirs:
                self.keeper.before_overwrite({key: self.manifest.manifest.wanted(key)})
            job = self.store.start_upload(view.path, key)
        except (OSError, Refused):
            view.close()
            return None  # the push takes it, and says why if it cannot
        except BaseException:
            view.close()
            raise
        self.manifest.manifest.note(key, file_mode(self.data_dir, key))
        self.uploading.add(key)
        return LargeUpload(rel, key, local[key], job, time.monotonic(), view, self.uploading)

    def finish(self, upload: LargeUpload) -> None:
        """The job succeeded: the bucket holds the version it read. Know it (and the file's mode)."""
        self.transfers.settled([upload.key])
        if same(local_version(self.data_dir, upload.key), upload.version):
            self.baseline.record(upload.key, upload.version)
        else:  # written to meanwhile (the change is queued again): ask what landed
            landed = self.bucket.versions([upload.key], self.baseline).get(upload.key)
            if landed is not None:
                self.baseline.record(upload.key, landed)
        try:
            self.manifest.write()
        except RcloneError as exc:  # the file is saved; its mode goes with the next push (the manifest stays dirty)
            log.debug("the file modes were not written after %s: %s", upload.rel, exc)
