"""The work of `rclone-jupyter history` and `rclone-jupyter recover`: the trash read with one listing, the plan
(model/trash.py), and the copies back (engine/trash.py).

They need no running `start`. With one running (its lock is held), a recovered file is written into the data
folder and the running one saves it as it saves any change; with none, the version is copied back inside the
bucket folder (server-side), where the next `start` restores it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rclone_jupyter.config.remotes import render_config
from rclone_jupyter.config.settings import Settings
from rclone_jupyter.engine.trash import TrashFolder
from rclone_jupyter.errors import ConfigError, RcloneJupyterError
from rclone_jupyter.logs import secret_mask
from rclone_jupyter.model import trash
from rclone_jupyter.model.filters import BUCKET_ONLY
from rclone_jupyter.model.known import keys_for
from rclone_jupyter.rclone.retry import RetryPolicy
from rclone_jupyter.rclone.runner import find_binary, rclone_for
from rclone_jupyter.rclone.store import RcloneStore
from rclone_jupyter.state import FileLock, StateDir, holder_pid, write_private

log = logging.getLogger(__name__)

# Someone waits at a terminal (or the panel) for the answer: a cloud that is down is told in about 2 s (three
# tries of one rclone attempt each), not after the start's four tries of three.
AT_A_TERMINAL = RetryPolicy(attempts=3, max_seconds=20.0)


def data_path(data_dir: Path, given: str, cwd: str | None = None) -> str:
    """A path the user typed, as a path relative to the data folder ('' is all of it).

    An absolute path must be inside the data folder; a relative one is relative to the current folder when
    that is inside the data folder (a JupyterLab terminal), else to the data folder. Raise ValueError if it
    is outside, or is rclone-jupyter's own folder.
    """
    cwd = cwd if cwd is not None else os.getcwd()
    if not given:
        base = Path(cwd)
        return _relative(data_dir, base) if _inside(data_dir, base) else ""
    path = Path(given)
    if not path.is_absolute():
        path = Path(cwd) / path if _inside(data_dir, Path(cwd)) else data_dir / path
    rel = _relative(data_dir, path)
    if rel is None:
        raise ValueError(f"{given} is not inside the data folder {data_dir} (RCLONE_JUPYTER_DATA_DIR); give a "
                         "path in it, or one relative to it")
    if rel.split("/", 1)[0] in BUCKET_ONLY:
        raise ValueError(f"{given}: {BUCKET_ONLY[0]}/ is rclone-jupyter's own folder, not one of your files")
    return rel


def _inside(root: Path, path: Path) -> bool:
    return _relative(root, path) is not None


def _relative(root: Path, path: Path) -> str | None:
    normal = os.path.normpath(str(path))
    root_text = str(root)
    if normal == root_text:
        return ""
    if normal.startswith(root_text.rstrip("/") + "/"):
        return normal[len(root_text.rstrip("/")) + 1:]
    return None


@contextlib.contextmanager
def trash_folders(settings: Settings) -> Iterator[list[TrashFolder]]:
    """One TrashFolder per configured remote, over a store with a private rclone config in a temporary folder
    (0700) that is gone afterwards: the running `start`'s state is not touched (its remote locks are taken)."""
    if not settings.persistent:
        raise ConfigError(["no bucket is configured (AWS_S3_BUCKET_FOLDER, AZURE_CONTAINER_URL or "
                           "GOOGLE_BUCKET_FOLDER): there is no trash to read."])
    secret_mask.add(*settings.secrets())
    binary = find_binary()
    state = StateDir(settings.state_dir)
    with tempfile.TemporaryDirectory(prefix="rj-undo-") as scratch:
        config = Path(scratch) / "rclone.conf"
        write_private(config, render_config(settings.remotes))
        rclone = rclone_for(settings, binary, config, low_level_retries=1)  # RCLONE_JUPYTER_BWLIMIT too
        locks = state.path if state.path.exists() else Path(scratch)  # shared with `start` when it has one
        try:
            yield [TrashFolder(RcloneStore(rclone, remote, FileLock(locks / f"remote-{remote.name}.lock"),
                                           lambda: Path(scratch), retry=AT_A_TERMINAL), remote.root, remote.name)
                   for remote in settings.remotes]
        finally:
            rclone.close()


def readable(folders: list[TrashFolder]) -> list[tuple[TrashFolder, list[trash.Kept]]]:
    """Each cloud's trash that answers now, with its versions, in the settings' order. A cloud that does not
    is left out with a WARNING that names it; when none answers, the first one's error is raised."""
    def read(folder: TrashFolder) -> list[trash.Kept] | RcloneJupyterError:
        try:
            return folder.versions()
        except RcloneJupyterError as exc:
            return exc

    # At once: a cloud that is down costs its retries, not those plus every other cloud's listing.
    with ThreadPoolExecutor(max_workers=len(folders) or 1) as pool:
        answers = list(pool.map(read, folders))
    out, failed = [], []
    for folder, answer in zip(folders, answers):
        if isinstance(answer, RcloneJupyterError):
            failed.append((folder, answer))
        else:
            out.append((folder, answer))
    if not out:
        raise failed[0][1]
    for folder, exc in failed:
        log.warning("the trash of %s cannot be read now (%s); what the other cloud(s) kept is used",
                    folder.store.display, exc)
    return out


def history(settings: Settings, rel: str) -> list[dict]:
    """The kept versions of `rel` (a file, or everything under a folder), newest first, as plain records: of
    every cloud that answers, a version kept in several of them once, with the names of the clouds that
    hold it."""
    with trash_folders(settings) as folders:
        per_cloud = readable(folders)
    names = [folder.name for folder, _versions in per_cloud]
    clouds = {version: [names[i] for i in held] for version, held in trash.merged(v for _f, v in per_cloud)}
    keep = settings.keep.days * 86_400 * 1_000_000_000
    return [{"path": v.path, "time": trash.show_time(v.at_ns), "kind": v.kind, "size": v.size,
             "mode": f"{v.mode:04o}", "expires": trash.show_time(v.at_ns + int(keep)) if keep else None,
             "object": f"{trash.TRASH}/{v.name}", "clouds": clouds[v]}
            for v in trash.history(clouds, rel)]


def daemon_running(settings: Settings) -> int | None:
    state = StateDir(settings.state_dir)
    return holder_pid(state.lock_path("daemon")) if state.path.exists() else None


def recover(settings: Settings, rel: str, at_ns: int | None) -> tuple[list[str], list[str], str]:
    """Bring `rel` back. Return (paths recovered, paths whose current file was kept as a conflict copy, where)."""
    running = daemon_running(settings)
    with trash_folders(settings) as folders:
        per_cloud = readable(folders)
        if running:
            # From the first cloud that answers and kept it: the running `start` saves it to every cloud.
            for folder, versions in per_cloud:
                steps = trash.recover_plan(versions, rel, at_ns=at_ns,
                                           exists=lambda target: os.path.lexists(settings.data_dir / target))
                if steps:
                    done = folder.recover_into(settings.data_dir, steps)
                    return done, [s.target for s in steps if s.aside and s.target in done], "data folder"
            return [], [], "data folder"
        done_all: set[str] = set()
        asides: set[str] = set()
        for folder, versions in per_cloud:  # each cloud in its own bucket folder
            present = folder.bucket_names()
            steps = trash.recover_plan(versions, rel, at_ns=at_ns,
                                       exists=lambda target: any(k in present for k in keys_for(target)))
            if steps:
                done_all.update(folder.recover_in_bucket(steps, present))
                asides.update(s.target for s in steps if s.aside)
        return sorted(done_all), sorted(asides), "bucket"

