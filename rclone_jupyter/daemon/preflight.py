"""Pre-flight: prove every bucket folder can be used before the restore touches the data folder.

Run by `start` (before the restore) and by `rclone-jupyter check` (one line per check). Per configured cloud:

- the credentials and the bucket: one recursive listing of the bucket folder (LIST requests only), which also
  gives the folder's total size and the other containers' heartbeats (daemon/presence.py);
- write, read back and delete one small probe object in the bucket folder (1 PUT, 1 HEAD + 1 GET, 1 DELETE on
  S3), so a read-only key or SAS is found now, not at the first save;
- credentials that say when they expire (a SAS's `se=`, AWS_CREDENTIAL_EXPIRATION): a warning with the date
  when that is within EXPIRY_WARNING;
- a fresh heartbeat of another container on the same bucket folder: a warning naming it.

The probe's three steps go through one `rclone rcd` (stopped at the end): one rclone start and one connection
to each storage, where a run per step cost a start (and a TLS handshake) each.

Then, for all clouds together, the restore must fit on the data folder's disk with a margin. Nothing is
changed on either side by a failed pre-flight (the probe object is deleted again).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Container, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rclone_jupyter.rclone import commands
from rclone_jupyter.model.known import Version
from rclone_jupyter.rclone.listing import read_listing
from rclone_jupyter.logs import human_size
from rclone_jupyter.errors import PersistenceError, RcloneError
from rclone_jupyter.model.filters import BUCKET_ONLY, is_noise
from rclone_jupyter.local.tree import cannot_hold
from rclone_jupyter.daemon.presence import FOLDER as NODES_FOLDER, FRESH_INTERVALS
from rclone_jupyter.rclone.retry import RetryPolicy, retrying
from rclone_jupyter.rclone.runner import Rclone
from rclone_jupyter.rclone.store import missing, names_unchecked
from rclone_jupyter.config.remotes import Remote
from rclone_jupyter.config.settings import Settings, Timing
from rclone_jupyter.daemon.status import Phase, StatusBoard

log = logging.getLogger(__name__)

OK, WARNING, FAILED = "ok", "warning", "failed"
EXPIRY_WARNING = dt.timedelta(days=7)
SHORT_PASSWORD = 12  # characters; the login is on the public internet (README, 'Deploy on SaladCloud')
# Room left on the data folder's disk after the restore: the user has to work there too.
MARGIN_FRACTION = 0.05
MARGIN_MIN = 8 * 1024 * 1024
# rclone's plain (non-JSON) log prefix, e.g. "2026/01/01 10:00:00 NOTICE: ".
_LOG_PREFIX = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Z]+: ")
PROBE_FOLDER = BUCKET_ONLY[0]  # never restored, never synced: a probe left by a crash is harmless


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    status: str  # OK, WARNING or FAILED
    message: str

    def line(self) -> str:
        return f"{self.status.upper():<7} {self.name}: {self.message}"


@dataclasses.dataclass
class Report:
    checks: list[Check] = dataclasses.field(default_factory=list)
    # Each bucket folder's whole listing ({remote name: {name: (size, server time)}}): the restore reuses it
    # instead of listing the folder again (Engine.use_listing).
    entries: dict[str, dict[str, Version]] = dataclasses.field(default_factory=dict)

    def add(self, name: str, status: str, message: str) -> None:
        self.checks.append(Check(name, status, message))

    @property
    def ok(self) -> bool:
        return all(c.status != FAILED for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAILED]


@dataclasses.dataclass
class _Listing:
    entries: dict[str, Version]  # everything, as rclone listed it: {name: (size, server time)}
    skipped: Container[str]  # the objects the data folder cannot hold: never restored
    nodes: dict[str, int]  # heartbeats: {node: server time in ns}

    def files(self) -> Iterator[tuple[str, int]]:
        """The user's files: (path, size) each (no copy of the listing: it may hold a million)."""
        return ((path, version.size) for path, version in self.entries.items()
                if not is_noise(path) and path not in self.skipped)


# Network blips are retried briefly; refused credentials and missing buckets fail at once.
BRIEF = RetryPolicy(attempts=3, max_seconds=20, first_wait=0.5, max_wait=4)


def _retrying(fn: Callable):
    return retrying(fn, "checking the bucket", BRIEF, quiet=True)


def _reason(exc: RcloneError) -> str:
    """The refusal in rclone's words, for a check line (already masked by the runner), without its timestamp."""
    return _LOG_PREFIX.sub("", str(exc).split(": ", 1)[-1])


# -- checks that need no request -----------------------------------------------------------------------------


def password_check(settings: Settings) -> Check | None:
    if settings.password_is_default:
        return Check("password", WARNING, "JUPYTERLAB_PW is not set; the password is the default 'data', which is "
                                          "public knowledge. Set JUPYTERLAB_PW to a long random password.")
    if len(settings.password) < SHORT_PASSWORD:
        return Check("password", WARNING, f"JUPYTERLAB_PW has {len(settings.password)} characters; the login page "
                                          f"is on the internet: use at least {SHORT_PASSWORD} (a long random one).")
    return None


def expiry_check(remote: Remote, now: dt.datetime) -> Check | None:
    if remote.expires is None:
        return None
    left = remote.expires - now
    when = remote.expires.isoformat(timespec="minutes")
    if left <= dt.timedelta(0):
        return Check(f"{remote.name} expiry", FAILED, f"the credentials expired on {when} ({remote.expiry_source}); "
                                                      "create new ones.")
    if left <= EXPIRY_WARNING:
        hours = left.total_seconds() / 3600
        return Check(f"{remote.name} expiry", WARNING,
                     f"the credentials expire on {when} (in {hours:.0f} h; {remote.expiry_source}). After that "
                     "nothing is saved: changes stay pending and status shows the error. Create new credentials "
                     "and restart the container with them before then (README, 'Provisioning your bucket').")
    return Check(f"{remote.name} expiry", OK, f"the credentials are valid until {when}.")


def disk_check(settings: Settings, listings: list[_Listing]) -> Check:
    """The restore must fit on the data folder's disk, with a margin. Files already here count as restored."""
    wanted: dict[str, int] = {}
    for listing in listings:  # several clouds usually hold the same files: count each path once
        for rel, size in listing.files():
            wanted[rel] = max(size, wanted.get(rel, 0))
    needed = 0
    for rel, size in wanted.items():
        try:
            if os.lstat(settings.data_dir / rel).st_size == size:
                continue  # the same file is here already (a restarted container keeps its disk)
        except OSError:
            pass
        needed += size
    disk = settings.data_dir
    while not disk.exists() and disk != disk.parent:
        disk = disk.parent
    free = shutil.disk_usage(disk).free
    margin = max(needed * MARGIN_FRACTION, MARGIN_MIN)
    total = sum(wanted.values())
    if needed and free < needed + margin:
        return Check("disk space", FAILED,
                     f"the bucket folder holds {human_size(total)} in {len(wanted)} files ({human_size(needed)} to "
                     f"restore), but the data folder's disk ({disk}) has only {human_size(free)} free; "
                     f"{human_size(needed + margin)} are needed (with a margin of {human_size(margin)}). Use a "
                     "bigger disk, or move files out of the bucket folder. Nothing was changed.")
    return Check("disk space", OK, f"{human_size(needed)} to restore, {human_size(free)} free on {disk}.")


# -- checks against a bucket ---------------------------------------------------------------------------------


def _list(rclone: Rclone, remote: Remote, report: Report) -> _Listing | None:
    name = f"{remote.name} bucket"
    try:
        run = _retrying(lambda: rclone.run(commands.folder_listing(remote.path()), what="checking the bucket",
                                           quiet=True, parse=read_listing))
    except RcloneError as exc:
        if missing(exc):
            report.add(name, FAILED, remote.missing_bucket())
        else:
            report.add(name, FAILED, f"{remote.display}: {_reason(exc)}")
        return None
    entries: dict[str, Version] = run.parsed
    nodes = {path[len(NODES_FOLDER) + 1:-len(".json")]: version.mtime_ns for path, version in entries.items()
             if path.startswith(NODES_FOLDER + "/") and path.endswith(".json")}
    skipped = cannot_hold(entries, lambda path: not is_noise(path))
    listing = _Listing(entries, skipped, nodes)
    count = size = 0
    for _path, file_size in listing.files():
        count += 1
        size += file_size
    report.add(name, OK, f"{remote.display} answers: {count} files, {human_size(size)}.")
    return listing


def _probe(rclone: Rclone, remote: Remote, scratch: Path) -> Check:
    """Write, read back and delete one small object in the bucket folder; return how that went."""
    name = f"{remote.name} write/read/delete"
    token = secrets.token_hex(8)
    probe_name = f"probe-{socket.gethostname()}-{token}.txt"
    local = scratch / f"{remote.name}-{probe_name}"
    local.write_text(f"rclone-jupyter pre-flight probe {token}\n")
    back = scratch / f"{remote.name}-read-back-{probe_name}"
    folder = remote.path(PROBE_FOLDER)
    unchecked = names_unchecked(remote)  # no HEAD to find the object
    delete = commands.probe_delete(folder, probe_name, unchecked=unchecked)
    steps = (("write", commands.probe_write(local, folder, probe_name)),
             ("read back", commands.probe_read(folder, probe_name, back, unchecked=unchecked)),
             ("delete", delete))
    done: list[str] = []
    try:
        for step, call in steps:
            try:
                _retrying(lambda: rclone.rc(call, what=f"probe {step}"))
            except RcloneError as exc:
                left = f" The probe object {PROBE_FOLDER}/{probe_name} may be left behind (harmless: never synced)." \
                    if done else ""
                if done and step == "read back":
                    _cleanup(rclone, delete)
                return Check(name, FAILED, f"could not {step} a small object in {remote.display}: {_reason(exc)}. "
                                           f"Syncing needs read, write, delete and list on the bucket folder "
                                           f"(README, 'Provisioning your bucket').{left}")
            if step == "read back" and back.read_bytes() != local.read_bytes():
                _cleanup(rclone, delete)
                return Check(name, FAILED, f"the probe object read back from {remote.display} differs from what "
                                           "was written; the storage service does not keep what it is given.")
            done.append(step)
    finally:
        local.unlink(missing_ok=True)
        back.unlink(missing_ok=True)
    return Check(name, OK, f"a probe object was written, read back and deleted in {remote.display}.")


def _cleanup(rclone: Rclone, delete: tuple[str, dict]) -> None:
    try:
        rclone.rc(delete, what="probe delete")
    except RcloneError as exc:
        log.debug("could not delete the probe object: %s", exc)


# An upload of a few GB on a slow uplink takes minutes, not a day: an unfinished one older than this was left by
# a container that stopped in the middle (SIGKILL, a lost node), and its parts are billed until removed.
OLD_UPLOAD = dt.timedelta(days=1)


def incomplete_uploads_check(rclone: Rclone, remote: Remote, now: dt.datetime) -> Check | None:
    """S3 only: the multipart uploads under the bucket folder started more than OLD_UPLOAD ago and never finished.

    None when there are none, or when they cannot be listed (the recommended IAM policy does not grant
    s3:ListBucketMultipartUploads, and some servers do not implement the call): the lifecycle rule of
    README's 'Provisioning your bucket' removes them either way.
    """
    if remote.provider != "s3":
        return None  # Azure discards uncommitted blocks after 7 days; GCS's resumable sessions end after a week
    try:
        run = rclone.run(commands.incomplete_uploads(remote.bucket_path()), what="listing incomplete uploads",
                         quiet=True)
        listed = json.loads(run.output or "{}").get(remote.bucket) or []
    except (RcloneError, ValueError) as exc:
        log.debug("cannot list the incomplete uploads of %s: %s", remote.display, exc)
        return None
    folder = remote.root.split("/", 1)[1] if "/" in remote.root else ""
    old = []
    for upload in listed:
        key = upload.get("Key") or ""
        try:
            started = dt.datetime.fromisoformat(upload.get("Initiated", "").replace("Z", "+00:00"))
        except ValueError:
            continue
        if (not folder or key.startswith(folder + "/")) and now - started > OLD_UPLOAD:
            old.append((started, key[len(folder) + 1:] if folder else key))
    if not old:
        return None
    old.sort()
    examples = ", ".join(f"{key} (started {started:%Y-%m-%d %H:%M} UTC)" for started, key in old[:3])
    return Check(f"{remote.name} incomplete uploads", WARNING,
                 f"{len(old)} multipart upload(s) in {remote.display} started more than a day ago and never "
                 f"finished, e.g. {examples}: a container stopped in the middle of them, and S3 bills their parts "
                 "until they are removed. Add the lifecycle rule AbortIncompleteMultipartUpload to the bucket "
                 "(README, 'Provisioning your bucket'); it removes these and every later one.")


def presence_check(remote: Remote, listing: _Listing, timing: Timing, now_ns: int) -> Check | None:
    interval = timing.heartbeat_interval or Timing.heartbeat_interval
    fresh = sorted(node for node, stamp in listing.nodes.items() if now_ns - stamp < FRESH_INTERVALS * interval * 1e9)
    if not fresh:
        return None
    return Check(f"{remote.name} other containers", WARNING,
                 f"another rclone-jupyter ({', '.join(fresh)}) synced {remote.display} within the last "
                 f"{FRESH_INTERVALS * interval / 60:.0f} min and may still be running. Both would keep working "
                 "(a file changed on both is kept twice), but stop the old container when you can.")


def run(settings: Settings, rclone: Rclone, scratch: Path, *, now: dt.datetime | None = None,
        incomplete_uploads: bool = False) -> Report:
    """Given Settings, a runner with their config and a private scratch folder, return every check's result.

    `incomplete_uploads` (for `check`; the start does not pay the extra request): old unfinished multipart
    uploads are reported too. The probes go through the runner's rcd (one rclone start for all, one connection
    to each storage), which is stopped at the end.
    """
    try:
        return _run(settings, rclone, scratch, now or dt.datetime.now(dt.timezone.utc), incomplete_uploads)
    finally:
        rclone.close()


def _run(settings: Settings, rclone: Rclone, scratch: Path, now: dt.datetime, incomplete_uploads: bool) -> Report:
    report = Report()
    password = password_check(settings)
    if password is not None:
        report.checks.append(password)
    listings: list[_Listing] = []
    for remote in settings.remotes:
        expiry = expiry_check(remote, now)
        if expiry is not None:
            report.checks.append(expiry)
        # The probe beside the listing: on a link with a round trip its three rclone runs would add to the
        # start's wait. Its object is under PROBE_FOLDER, which the listing's users leave out (noise).
        with ThreadPoolExecutor(max_workers=1) as pool:
            probed = pool.submit(_probe, rclone, remote, scratch)
            listing = _list(rclone, remote, report)
            probe = probed.result()
        if listing is None:
            continue  # the bucket's own failure says what to fix; the probe's would repeat it
        listings.append(listing)
        report.entries[remote.name] = listing.entries
        others = presence_check(remote, listing, settings.timing, int(now.timestamp() * 1e9))
        if others is not None:
            report.checks.append(others)
        report.checks.append(probe)
        if incomplete_uploads:
            leftovers = incomplete_uploads_check(rclone, remote, now)
            if leftovers is not None:
                report.checks.append(leftovers)
    if settings.remotes and len(listings) == len(settings.remotes):
        report.checks.append(disk_check(settings, listings))
    return report


def at_start(settings: Settings, rclone: Rclone, scratch: Path, board: StatusBoard) -> Report:
    """The pre-flight of `start`: log every finding; raise PersistenceError naming every failure."""
    board.set_phase(Phase.CHECKING)
    report = run(settings, rclone, scratch)
    for check in report.checks:
        if check.status == FAILED:
            log.error("ERROR: pre-flight %s: %s", check.name, check.message)
        elif check.status == WARNING and not (check.name == "password" and settings.password_is_default):
            log.warning("WARNING: %s", check.message)  # (the default password is warned about already)
        elif check.status == OK:
            log.info("pre-flight %s: %s", check.name, check.message)
    if not report.ok:
        board.set_phase(Phase.FAILED)
        raise PersistenceError("the pre-flight checks failed, nothing was changed: " +
                               "; ".join(f"{c.name}: {c.message}" for c in report.failures()))
    return report
