"""Pure builders of rclone argument tuples: no process is started here (see rclone.py).

Every builder returns the arguments after the binary. Secrets never appear: remotes are referred to by
name and their credentials live in the private config file.
"""

from __future__ import annotations

from pathlib import Path

from rclone_jupyter.filters import rclone_excludes

# JSON log lines are parsed by rclone.py (levels, final stats); colour codes would get in the way.
COMMON = ("--use-json-log", "--color", "NEVER", "-v")
# Our own retry policy (tenacity) owns the retries; rclone's low-level retries still absorb blips.
RETRIES = ("--retries", "1", "--low-level-retries", "3")
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


def stats(interval: str = "0") -> tuple[str, ...]:
    return ("--stats", interval, "--stats-one-line")


def mkdir(remote_path: str) -> tuple[str, ...]:
    return ("mkdir", remote_path, *COMMON, *RETRIES)


def list_top(remote_path: str) -> tuple[str, ...]:
    """List one level of a path: cheap proof that a bucket exists and the credentials can read it."""
    return ("lsf", remote_path, "--max-depth", "1", *COMMON, *RETRIES)


def restore(remote_path: str, data_dir: Path, *, transfers: int = 16) -> tuple[str, ...]:
    """Copy the bucket folder into the data folder. `copy` never deletes; `--update` keeps newer local files."""
    return (
        "copy", remote_path, str(data_dir),
        "--update",
        "--fast-list",
        "--transfers", str(transfers),
        "--checkers", str(transfers),
        "--multi-thread-streams", "8",
        *EXCLUDES, *COMMON, *RETRIES, *stats("5s"),
    )


def bisync(data_dir: Path, remote_path: str, workdir: Path, *, resync: bool = False, force: bool = False) -> tuple[str, ...]:
    """Two-way sync of the data folder (Path1) and the bucket folder (Path2).

    `resync` rebuilds the baseline as the union of both sides (it never deletes); `force` passes bisync's
    safety guards and is only used when every change on our side was seen by the watcher.
    """
    argv = [
        "bisync", str(data_dir), remote_path,
        "--workdir", str(workdir),
        "--create-empty-src-dirs",
        "--resilient", "--recover",
        "--fast-list",
        "--transfers", "8",
        *CONFLICTS, *EXCLUDES, *COMMON, *RETRIES, *stats(),
    ]
    if resync:
        # On a baseline, a file that differs on both sides goes the newer way.
        argv += ["--resync", "--resync-mode", "newer"]
    if force:
        argv.append("--force")
    return tuple(argv)


def copy_files(data_dir: Path, remote_path: str, files_from: Path) -> tuple[str, ...]:
    """Upload exactly the files listed (relative paths, one per line), without listing the bucket."""
    return (
        "copy", str(data_dir), remote_path,
        "--files-from-raw", str(files_from),
        "--no-traverse",
        "--no-check-dest",
        "--transfers", "8",
        *COMMON, *RETRIES, *stats(),
    )


def stat_files(remote_path: str, files_from: Path) -> tuple[str, ...]:
    """Size and modification time of the listed objects in the bucket (missing ones are left out)."""
    return (
        "lsjson", remote_path,
        "--files-from-raw", str(files_from),
        "--no-traverse",
        "--no-mimetype",
        "--files-only",
        *RETRIES,
    )


def delete_files(remote_path: str, files_from: Path) -> tuple[str, ...]:
    """Delete exactly the listed objects in the bucket."""
    return (
        "delete", remote_path,
        "--files-from-raw", str(files_from),
        "--no-traverse",
        *COMMON, *RETRIES, *stats(),
    )


def purge(remote_path: str) -> tuple[str, ...]:
    """Delete a folder of the bucket and everything under it."""
    return ("purge", remote_path, *COMMON, *RETRIES)
