"""Pure builders of rclone argument tuples: no process is started here (see rclone/runner.py).

Every builder returns the arguments after the binary. Secrets never appear: remotes are referred to by
name and their credentials live in the private config file.
"""

from __future__ import annotations

from pathlib import Path

from rclone_jupyter.model.filters import rclone_excludes
from rclone_jupyter.model.known import folders_of, outermost_outside
from rclone_jupyter.model.manifest import MANIFEST

# JSON log lines are parsed by rclone/runner.py (levels, final stats); colour codes would get in the way.
JSON_LOG = ("--use-json-log", "--color", "NEVER")
COMMON = (*JSON_LOG, "-v")
# For bulk copies (restore): no line per file, only progress and the final stats (logged at NOTICE).
BULK = (*JSON_LOG, "--stats-log-level", "NOTICE")
# Our own retry policy owns the retries; rclone's low-level retries still absorb blips. A server that accepts
# a connection and then says nothing fails the call within a minute (rclone's default is 5), so the syncer
# can retry and the status can say so: the timeout is idle time, a long upload that moves data is not cut.
RETRIES = ("--retries", "1", "--low-level-retries", "3", "--contimeout", "15s", "--timeout", "60s")
# Noise (atomic-save temp files, checkpoints, swap files) and files about this container only.
EXCLUDES = rclone_excludes()
# Bisync's conflict rule (DESIGN invariant 6): the newer version keeps the name, the other is kept beside
# it as name.conflict1.ext, an extension Jupyter still recognises.
CONFLICTS = (
    "--conflict-resolve", "newer",
    "--conflict-loser", "num",
    "--conflict-suffix", "conflict",
    "--suffix-keep-extension",
)


def global_flags(*, bwlimit: str | None = None, low_level_retries: int | None = None) -> tuple[str, ...]:
    """Flags for every rclone the daemon runs (the runner's runs and the rcd), after each command's own (the
    last one wins): the user's bandwidth limit, in rclone's own --bwlimit syntax (`4M`, `4M:16M` for
    upload:download, a timetable such as `08:00,1M 23:00,off`), and `low_level_retries` instead of RETRIES'
    (on S3 also the SDK's attempts: 3 take about 6 s against a server that is down, 1 takes milliseconds).
    """
    return ((("--bwlimit", bwlimit) if bwlimit else ())
            + (("--low-level-retries", str(low_level_retries)) if low_level_retries is not None else ()))


def check_bwlimit(value: str) -> tuple[str, ...]:
    """A run that only parses `--bwlimit VALUE` as every rclone command does: exit 2 and rclone's reason if
    rclone would refuse it. `version` touches no remote and no config."""
    return ("version", "--bwlimit", value)


def stats(interval: str = "1h") -> tuple[str, ...]:
    """Progress every `interval`, and one final stats record (what moved, how long); "0" would drop it."""
    return ("--stats", interval, "--stats-one-line")


def as_folder(remote_path: str) -> str:
    """Given `remote:bucket/folder`, return it with a trailing slash.

    Opening `remote:bucket/folder` costs a HEAD on S3 (rclone checks whether `folder` is an object); with the
    slash it is known to be a folder. That HEAD is half the requests of a one-file push.
    """
    return remote_path if remote_path.endswith(("/", ":")) else remote_path + "/"


def mkdir(remote_path: str) -> tuple[str, ...]:
    # -q: on bucket stores mkdir of a folder "does nothing", and rclone says so at NOTICE level on every start.
    return ("mkdir", remote_path, *JSON_LOG, "-q", *RETRIES)


def list_top(remote_path: str) -> tuple[str, ...]:
    """List one level of a path: cheap proof that a bucket exists and the credentials can read it."""
    return ("lsf", remote_path, "--max-depth", "1", *COMMON, *RETRIES)


def glob_escape(name: str) -> str:
    """A literal name as an rclone filter pattern (its glob characters escaped)."""
    return "".join("\\" + c if c in "*?[]{}\\" else c for c in name)


# Small files are bound by the round trip, not the bandwidth: a GET of 1.5 KiB costs one round trip whatever
# the link. 3,000 such files at 60 ms (bench/realstart.py): 51 s with rclone's default 4 transfers, 14 s with
# 16, 6-8 s with 64, 6-9 s with 128 and 256 (no better, on 2 shared cores). 64 GETs in flight is what latency needs.
RESTORE_TRANSFERS = 64
# The large files after JupyterLab has started: two streams fill a home link (files over 256 MiB get 8 streams
# each, --multi-thread-streams); more would only split it, and
# smallest first means the first ones are whole (and usable) as early as possible.
LATER_TRANSFERS = 2


def exclude_lines(names, kept) -> str:
    """An --exclude-from file that leaves out exactly these object names (one rule a line: no argv limit).

    `kept`: the names the copy does bring. A folder with nothing kept below it is left out by one rule
    (`/moved/**`) instead of one rule a name: rclone matches every object against every rule in turn, so the
    2,600 names below a link object cost it 6 s of CPU at every start, and 40,000 would cost it many minutes.

    rclone strips the spaces around each line: a trailing one is written as a class (`[ ]`) so it stays. A rule
    ending in `/` is a folder rule (the folder and all below it): the object `dir/` (a folder marker with
    content) is written `/dir[/]`, which leaves out that object alone."""
    kept_folders = folders_of(kept)
    left_out: set[str] = set()
    lines = []
    for name in names:
        folder = outermost_outside(name, kept_folders)
        if folder is None:
            lines.append(_name_rule(name))
        elif folder not in left_out:
            left_out.add(folder)
            lines.append(f"/{glob_escape(folder)}/**\n")
    return "".join(lines)


def _name_rule(name: str) -> str:
    """The filter line that leaves out the object `name` alone."""
    rule = "/" + glob_escape(name)
    if rule.endswith("/"):
        rule = rule[:-1] + "[/]"
    tail = len(rule) - len(rule.rstrip())
    return rule[: len(rule) - tail] + "".join(f"[{c}]" for c in rule[len(rule) - tail:]) + "\n"


def restore(remote_path: str, data_dir: Path, *, transfers: int = RESTORE_TRANSFERS, only_missing: bool = False,
            exclude_from: Path | None = None, max_size: int | None = None) -> tuple[str, ...]:
    """Copy the bucket folder into the data folder. `copy` never deletes.

    `--update` keeps newer local files; `only_missing` (merging a second cloud in) copies only the files the
    data folder does not have yet (`--ignore-existing`). `--links`: link objects (`name.rclonelink`) become
    symbolic links again. `exclude_from`: a file of the object names the data folder cannot hold
    (exclude_lines; tree.cannot_hold). `max_size`: only files of at most this many bytes (the large ones come
    later: restore_later). One LIST per 1,000 objects and one GET per object: rclone takes the modtime from
    the GET's headers.
    """
    skipped = ("--exclude-from", str(exclude_from)) if exclude_from is not None else ()
    return (
        "copy", remote_path, str(data_dir),
        "--ignore-existing" if only_missing else "--update",
        "--links",
        "--fast-list",
        "--transfers", str(transfers),
        "--checkers", str(transfers),
        "--multi-thread-streams", "8",
        *(("--max-size", f"{max_size}B") if max_size is not None else ()),
        *skipped, *EXCLUDES, *BULK, *RETRIES, *stats("5s"),
    )


def restore_later(remote_path: str, staging: Path, files_from: Path, *,
                  transfers: int = LATER_TRANSFERS) -> tuple[str, ...]:
    """Download exactly the listed objects into a staging folder, smallest first (the large files of a start).

    Each lands under its final name in the staging folder only when whole (rclone writes a `.partial` first),
    and rclone logs one "Copied" record per file (-v), so the caller moves each into place as it arrives.
    --no-traverse: the staging folder is new, nothing to list there.
    """
    return (
        "copy", as_folder(remote_path), str(staging),
        "--files-from-raw", str(files_from),
        "--no-traverse",
        "--links",
        "--order-by", "size,ascending",
        "--transfers", str(transfers),
        "--checkers", str(transfers),
        "--multi-thread-streams", "8",
        *COMMON, *RETRIES, *stats("2s"),
    )


def bisync(data_dir: Path, remote_path: str, workdir: Path, *, resync: bool = False, force: bool = False,
           resync_mode: str = "newer", dry_run: bool = False, keep_into: str | None = None) -> tuple[str, ...]:
    """Two-way sync of the data folder (Path1) and the bucket folder (Path2).

    `resync` rebuilds the baseline as the union of both sides (it never deletes); `force` passes bisync's
    safety guards and is only used when every change on our side was seen by the watcher. `keep_into`: a
    folder of the bucket folder's trash that every object bisync deletes or overwrites in the bucket moves
    into first (--backup-dir2: a server-side move; allowed inside Path2 because the trash is excluded).
    """
    argv = [
        "bisync", str(data_dir), remote_path,
        "--workdir", str(workdir),
        "--links",  # links as .rclonelink objects, as the restore and the default push keep them
        "--create-empty-src-dirs",
        "--resilient", "--recover",
        "--fast-list",
        "--transfers", "8",
        *CONFLICTS, *EXCLUDES, *COMMON, *RETRIES, *stats(),
    ]
    if resync:
        # On a baseline, a file that differs on both sides goes the newer way ("path1": the data folder's way,
        # used when several clouds were merged into it and it already holds the winner of each disagreement).
        argv += ["--resync", "--resync-mode", resync_mode]
    if force:
        argv.append("--force")
    if dry_run:  # says what it would do (records with "skipped"), changes nothing; its listings stay as they are
        argv.append("--dry-run")
    if keep_into:
        argv += ["--backup-dir2", keep_into]
    return tuple(argv)


def download_as(remote_file: str, local_file: Path) -> tuple[str, ...]:
    """Copy one object to a local file of another name (a conflict copy)."""
    return ("copyto", remote_file, str(local_file), *COMMON, *RETRIES)


# A whole folder's listing, one object a line: path, size, time in ns since the epoch (rclone/listing.py reads
# it). CSV quotes a name with a comma, a quote or a line break in it; at 1,000,000 objects this is about 60 MB
# of text where lsjson printed 150 MB, each line parsed as JSON.
LISTING_FORMAT = ("--csv", "--format", "pst", "--time-format", "unixnano")


def snapshot(remote_path: str) -> tuple[str, ...]:
    """Every file under a path with its size and the server's modification time, from listings alone.

    --use-server-modtime: on S3, rclone's own modtime lives in object metadata (one HEAD per object); the
    server's Last-Modified comes with the listing, and any upload by anyone changes it. LIST requests only.
    """
    # The manifest (model/manifest.py) is listed too: a --filter rule ahead of the same excludes as --filter rules
    # (rclone does not order --filter before --exclude flags).
    return ("lsf", as_folder(remote_path), "-R", "--files-only", *LISTING_FORMAT, "--fast-list",
            "--use-server-modtime", "--filter", f"+ /{MANIFEST}", *as_filters(EXCLUDES), *RETRIES)


def as_filters(excludes: tuple[str, ...]) -> tuple[str, ...]:
    """`--exclude P` flags as `--filter "- P"` flags, which keep their order among other --filter rules."""
    out: list[str] = []
    for flag, pattern in zip(excludes[::2], excludes[1::2]):
        assert flag == "--exclude"
        out += ["--filter", f"- {pattern}"]
    return tuple(out)


def cat(remote_file: str, head: int | None = None) -> tuple[str, ...]:
    """One object's content on stdout (one GET): the modes manifest; with `head`, its first bytes only."""
    return ("cat", remote_file, *(("--head", str(head)) if head is not None else ()), *COMMON, *RETRIES)


def upload_small(scratch: Path, remote_path: str, files_from: Path) -> tuple[str, dict]:
    """Upload small objects (the manifest) from a scratch folder that mirrors their place in the bucket
    folder: one PUT each."""
    return "sync/copy", {"srcFs": str(scratch), "dstFs": as_folder(remote_path),
                         **_listed(files_from, NoCheckDest=True)}


def list_files(remote_path: str) -> tuple[str, ...]:
    """Every file under a path, with size and modification time, as JSON on stdout (noise excluded)."""
    return ("lsjson", remote_path, "-R", "--files-only", "--no-mimetype", "--fast-list", *EXCLUDES, *RETRIES)


def hash_files(remote_path: str, files_from: Path) -> tuple[str, ...]:
    """The MD5 of the listed objects, as JSON on stdout (an object without one has no "Hashes")."""
    return (
        "lsjson", as_folder(remote_path),
        "--files-from-raw", str(files_from),
        "-R",  # without it, --files-from lists only the top level: nested files would get no hash
        "--no-traverse", "--no-mimetype", "--files-only",
        "--hash", "--hash-type", "md5",
        *RETRIES,
    )


def rcd(socket_path: str, *, per_file: bool = False) -> tuple[str, ...]:
    """The long-running rclone of the push path (rclone/rcd.py), answering on a unix socket in a private folder.

    --rc-no-auth: rc methods that touch remotes demand auth or this flag; a unix socket is not reachable
    over the network, and its folder (0700) decides who may connect. --s3-no-head: see copy_files.
    Its log is NOTICE and above (errors are what the daemon shows) unless `per_file` (a line per file, at
    INFO, for a daemon that logs at DEBUG): parsing that line cost 40% of the daemon's CPU in a burst.
    """
    level = ("-v",) if per_file else ("--log-level", "NOTICE")
    return ("rcd", "--rc-addr", socket_path, "--rc-no-auth", "--s3-no-head", *JSON_LOG, *level, *RETRIES)


# How many files of one push are in flight at once. A small file's PUT is one round trip: at 60 ms (a cloud
# region 20-150 ms away) and 2 MiB/s up, keeping the uplink busy with 1.5 KiB files (about 2.5 KiB on the wire
# with headers) takes 2 MiB/s / 2.5 KiB * 0.06 s = about 50 PUTs in flight; 8 left a `pip install` of 1,000
# files 6x slower than a tuned rclone copy. Smallest first: a notebook in a batch with larger files lands first.
BURST = {"Transfers": 64, "Checkers": 64, "OrderBy": "size,ascending"}


# The rc calls of the push path: (method, params) for Rclone.rc. `_filter` and `_config` are rclone's
# per-call flags: --files-from-raw and --no-traverse make each call touch exactly the listed objects.
def _listed(files_from: Path, **config) -> dict:
    return {"_filter": {"FilesFromRaw": [str(files_from)]}, "_config": {"NoTraverse": True, **config}}


def copy_files(source: Path, remote_path: str, files_from: Path, *, follow_links: bool = False) -> tuple[str, dict]:
    """Upload exactly the objects listed (names relative to `source`, one per line), without listing the bucket.

    `source` is an upload view (local/upload_view.py). `follow_links`: its entries are links to the files'
    descriptors, read through (the local backend's copy_links); otherwise they are the user's links, each
    listed as `x.rclonelink` and uploaded as a link object (Links). rclone refuses both at once.

    One PUT per file on S3: the engine has just looked at each object (stat_files), so neither the check
    before the upload (NoCheckDest) nor the HEAD after it (--s3-no-head on the rcd; single-part PUTs carry
    Content-MD5, so the server still verifies the bytes) is needed. Other backends ignore --s3-* flags.
    """
    links = {} if follow_links else {"Links": True}
    return "sync/copy", {"srcFs": read_through(source) if follow_links else str(source),
                         "dstFs": as_folder(remote_path), **_listed(files_from, NoCheckDest=True, **links, **BURST)}


def read_through(view: Path) -> str:
    """An upload view as rclone's source: its links followed to the files they name."""
    return f":local,copy_links:{view}"


def download_files(remote_path: str, staging: Path, files_from: Path) -> tuple[str, dict]:
    """Download exactly the objects listed into a staging folder (a HEAD and a GET each; link objects become
    links there). The engine moves each into place itself, never through a link.

    RESTORE_TRANSFERS at once, as the restore: a reconcile that brings many small files made elsewhere (a
    venv, a clone) is bound by the round trip too; the rcd's default of 4 would make it 16 times slower."""
    return "sync/copy", {"srcFs": as_folder(remote_path), "dstFs": str(staging),
                         **_listed(files_from, Links=True, Transfers=RESTORE_TRANSFERS,
                                   Checkers=RESTORE_TRANSFERS)}


def list_folder(remote_path: str, folder: str) -> tuple[str, dict]:
    """Every object under a folder the bucket is not known to hold: one LIST proves a whole new tree absent."""
    return "operations/list", {"fs": as_folder(remote_path), "remote": folder,
                               "opt": {"recurse": True, "filesOnly": True, "noMimeType": True}}


def stat_files(remote_path: str, files_from: Path) -> tuple[str, dict]:
    """Size and modification time of the listed objects in the bucket (missing ones are left out).

    One HEAD a file. `recurse`: without it only listed files at the top level are reported, and a nested
    notebook changed in the bucket went unseen and was overwritten.
    """
    return "operations/list", {"fs": as_folder(remote_path), "remote": "",
                               "opt": {"recurse": True, "filesOnly": True, "noMimeType": True},
                               **_listed(files_from)}


def delete_files(remote_path: str, files_from: Path, *, unchecked: bool = False) -> tuple[str, dict]:
    """Delete exactly the listed objects in the bucket. rclone looks each one up first (a HEAD on S3);
    `unchecked` (S3 only): it does not (unchecked_fs), one DELETE each, a no-op for one already gone."""
    return "operations/delete", {"fs": as_folder(unchecked_fs(remote_path) if unchecked else remote_path),
                                 **_listed(files_from)}


def copy_object(remote_path: str, source: str, target: str) -> tuple[str, dict]:
    """A server-side copy of one object to another name in the same bucket folder (no download)."""
    return "operations/copyfile", {"srcFs": as_folder(remote_path), "srcRemote": source,
                                   "dstFs": as_folder(remote_path), "dstRemote": target}


def transfer_file(source_fs: str, source: str, target_fs: str, target: str) -> tuple[str, dict]:
    """One (large) file copied as a background job of the rcd: the answer is a job id at once (`_async`).

    A job stopped with job_stop leaves no object under the name: a single PUT that did not finish creates
    nothing, and rclone aborts a multipart upload it stops (on S3 that needs s3:AbortMultipartUpload)."""
    return "operations/copyfile", {"srcFs": as_folder(source_fs), "srcRemote": source,
                                   "dstFs": as_folder(target_fs), "dstRemote": target, "_async": True}


def job_status(job_id: int) -> tuple[str, dict]:
    return "job/status", {"jobid": job_id}


def job_stats(job_id: int) -> tuple[str, dict]:
    """The transfer statistics of one job (its bytes so far and in all): rclone's stats group `job/<id>`."""
    return "core/stats", {"group": f"job/{job_id}"}


def job_stop(job_id: int) -> tuple[str, dict]:
    return "job/stop", {"jobid": job_id}


# The presence heartbeat (daemon/presence.py): rc calls, so a start's heartbeat starts the rcd its first save
# then finds running, instead of three rclone processes of its own (each its own connections to the bucket).
def put_file(local_file: Path, remote_path: str, name: str) -> tuple[str, dict]:
    """Upload one local file as the object `name` of a folder."""
    return "operations/copyfile", {"srcFs": str(local_file.parent), "srcRemote": local_file.name,
                                   "dstFs": as_folder(remote_path), "dstRemote": name}


def list_objects(remote_path: str) -> tuple[str, dict]:
    """The objects directly in a folder, with size and modification time (answer: `list`)."""
    return "operations/list", {"fs": as_folder(remote_path), "remote": "",
                               "opt": {"filesOnly": True, "noMimeType": True}}


def delete_object(remote_path: str, name: str) -> tuple[str, dict]:
    """Delete the object `name` of a folder."""
    return "operations/deletefile", {"fs": as_folder(remote_path), "remote": name}


# The pre-flight (daemon/preflight.py): a listing and one probe object, each in as few requests as rclone allows.
def folder_listing(remote_path: str) -> tuple[str, ...]:
    """Every object under a folder with its size and the server's time, from LIST requests only.

    No filters: the caller needs the heartbeats under .rclone-jupyter/ as well as the user's files (it sorts
    them itself). The format: LISTING_FORMAT (no MIME type: on S3 one costs a HEAD per object). A run, not an rc
    call: its output is read as it comes, where an rc answer is one JSON text of the whole folder.
    """
    return ("lsf", as_folder(remote_path), "-R", "--files-only", *LISTING_FORMAT, "--fast-list",
            "--use-server-modtime", *RETRIES)


def incomplete_uploads(bucket_path: str) -> tuple[str, ...]:
    """The unfinished multipart uploads of an S3 bucket as JSON ({bucket: [{Key, Initiated, UploadId}]}).

    Given the bucket alone: rclone matches a folder given here as a key prefix ("dir" matches "dir2/x"), so the
    caller keeps the uploads under its folder itself.
    """
    return ("backend", "list-multipart-uploads", bucket_path, *RETRIES)


# The trash (model/trash.py, engine/trash.py).
def list_sizes(remote_path: str, folder: str) -> tuple[str, dict]:
    """Every object under a folder with its size, from LIST requests alone: no modtime (on S3 rclone's
    modtime is a HEAD per object; a kept version's name says its time)."""
    return "operations/list", {"fs": as_folder(remote_path), "remote": folder,
                               "opt": {"recurse": True, "filesOnly": True, "noMimeType": True, "noModTime": True}}


def copy_many(remote_path: str, source_folder: str, target_folder: str, files_from: Path, *,
              unchecked: bool = False) -> tuple[str, dict]:
    """Copy the listed objects of one folder of the bucket folder into another, under the same names:
    server-side copies (no byte crosses this machine's link), 16 at a time. NoCheckDest: whatever is at a
    target name is replaced (the caller kept it first).

    On S3 rclone makes three requests a copy: a HEAD of the source, the CopyObject, and a HEAD of the copy to
    check it (--s3-no-head does not skip that one). `unchecked` (S3 only) leaves the last one out: the copy is
    made by the server itself, from an object it holds. no_head_object makes rclone take each object as named
    instead of looking it up (it still reads the source's metadata once, for its time and size), so neither
    the copy's size nor its checksum is there to compare (IgnoreSize, IgnoreChecksum). A source gone meanwhile
    fails the copy."""
    base = unchecked_fs(remote_path) if unchecked else remote_path

    def folder(rel: str) -> str:
        return as_folder(f"{base}/{rel}" if rel else base)

    skip = {"IgnoreSize": True, "IgnoreChecksum": True} if unchecked else {}
    return "sync/copy", {"srcFs": folder(source_folder), "dstFs": folder(target_folder),
                         **_listed(files_from, NoCheckDest=True, Transfers=16, Checkers=16, **skip)}


def move_many(remote_path: str, source_folder: str, target_folder: str, files_from: Path, *,
              unchecked: bool = False) -> tuple[str, dict]:
    """copy_many, then each source deleted: a delete that keeps what it deletes. On S3 four requests an object
    (HEAD, CopyObject, HEAD of the copy, DELETE), three `unchecked`, where a copy and then a delete were six
    (measured on moto)."""
    _method, params = copy_many(remote_path, source_folder, target_folder, files_from, unchecked=unchecked)
    return "sync/move", params


def unchecked_fs(remote_path: str) -> str:
    """An S3 `remote:path` whose objects rclone takes as named, without a HEAD to find or check them (a
    connection-string option; the bucket is not checked either way: no_check_bucket in the template)."""
    name, _, path = remote_path.partition(":")
    return f"{name},no_head_object=true:{path}"


# The pre-flight's probe (daemon/preflight.py), sent to an rcd: one rclone start for its three steps, and one
# connection to the storage, instead of a start (and a TLS handshake) each.

def probe_write(local_file: Path, remote_folder: str, name: str) -> tuple[str, dict]:
    """Upload one small object with one PUT: no check of the destination before (NoCheckDest), no HEAD after
    (--s3-no-head on the rcd)."""
    return "operations/copyfile", {"srcFs": str(local_file.parent), "srcRemote": local_file.name,
                                   "dstFs": as_folder(remote_folder), "dstRemote": name,
                                   "_config": {"NoCheckDest": True}}


def probe_read(remote_folder: str, name: str, local_file: Path, *, unchecked: bool) -> tuple[str, dict]:
    """Download one object into a local file: one GET (`unchecked`, S3: no HEAD to find it first)."""
    return "operations/copyfile", {"srcFs": as_folder(unchecked_fs(remote_folder) if unchecked else remote_folder),
                                   "srcRemote": name, "dstFs": str(local_file.parent), "dstRemote": local_file.name}


def probe_delete(remote_folder: str, name: str, *, unchecked: bool) -> tuple[str, dict]:
    """Delete one object: one DELETE (`unchecked`, S3: no HEAD to find it first)."""
    return "operations/deletefile", {"fs": as_folder(unchecked_fs(remote_folder) if unchecked else remote_folder),
                                     "remote": name}


def list_top_call(remote_path: str) -> tuple[str, dict]:
    """`list_top` as an rc call: one level of a path, folders too."""
    return "operations/list", {"fs": as_folder(remote_path), "remote": "", "opt": {"noModTime": True,
                                                                                   "noMimeType": True}}
