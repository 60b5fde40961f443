"""One remote's trash: the versions the sync replaced, kept under `.rclone-jupyter/trash/` in the bucket folder
(names and rules: model/trash.py). Listing them, bringing them back, and removing the expired ones.

Everything goes through the one rclone runner. A listing is LIST requests alone (one per 1,000 versions); a
recover into the bucket is server-side copies (no byte crosses this machine's link); a recover into the data
folder downloads into a staging folder first and moves each file into place never through a link, keeping a
file that is there now as a conflict copy first.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rclone_jupyter.config.remotes import Remote
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.tree import STAGING_PREFIX, conflict_name, place
from rclone_jupyter.model import trash
from rclone_jupyter.model.known import LINK_SUFFIX, encode_name, keys_for, under_link
from rclone_jupyter.model.manifest import DEFAULT_MODE, MANIFEST, Manifest
from rclone_jupyter.rclone import commands
from rclone_jupyter.rclone.runner import EXIT_DIR_NOT_FOUND, EXIT_FILE_NOT_FOUND, Rclone

log = logging.getLogger(__name__)


class TrashFolder:
    """The trash of one remote. `scratch`: a private folder for rclone's list files."""

    def __init__(self, rclone: Rclone, remote: Remote, scratch: Path):
        self.rclone = rclone
        self.remote = remote
        self.scratch = scratch

    def path(self, rel: str = "") -> str:
        return self.remote.path(f"{trash.TRASH}/{rel}" if rel else trash.TRASH)

    def _list_file(self, name: str, lines: Iterable[str]) -> Path:
        path = self.scratch / f"{self.remote.name}-trash-{name}.txt"
        path.write_text("".join(f"{line}\n" for line in lines))
        return path

    def _listing(self, remote_path: str, what: str) -> list[dict]:
        try:
            run = self.rclone.run(commands.folder_listing(remote_path), what=what, quiet=True)
        except RcloneError as exc:
            if exc.rclone_exit_code == EXIT_DIR_NOT_FOUND:
                return []
            raise
        return json.loads(run.output or "[]")

    def versions(self) -> list[trash.Kept]:
        """Every version kept in this remote's trash (LIST requests only)."""
        out = []
        for entry in self._listing(self.path(), "listing the kept versions"):
            kept = trash.parse(entry["Path"], int(entry["Size"]))
            if kept is not None:
                out.append(kept)
        return out

    def keep(self, versions: Iterable[trash.Kept]) -> list[trash.Kept]:
        """Keep the bucket's current object of each version under its trash name, by server-side copies
        (through the rcd: this is the push path). Return the versions kept; one whose name would be too long
        for the storage is not, and is logged."""
        fitting: list[trash.Kept] = []
        for version in versions:
            if trash.fits(self.remote.root, version):
                fitting.append(version)
            else:
                log.warning("%s is not kept in the trash before it is replaced: its name would be longer than "
                            "the storage allows", version.path)
        groups: dict[str, list[trash.Kept]] = {}
        for version in fitting:
            groups.setdefault(trash.folder_of(version.at_ns, version.kind, version.mode), []).append(version)
        for folder, group in groups.items():
            files = self._list_file("keep", (v.key for v in group))
            self.rclone.rc(commands.keep_copies(self.remote.path(), self.path(folder), files),
                           what="keeping the replaced versions")
        return fitting

    def bucket_names(self) -> set[str]:
        """The names of every object in the bucket folder now (LIST requests only)."""
        return {e["Path"] for e in self._listing(self.remote.path(), "listing the bucket folder")}

    def expire(self, versions: Iterable[trash.Kept], now_ns: int, keep_days: float) -> int:
        """Remove the versions kept longer than `keep_days` (one DELETE each). Return how many went."""
        doomed = trash.expired(versions, now_ns, keep_days)
        if doomed:
            files = self._list_file("expired", (v.name for v in doomed))
            self.rclone.run(commands.delete_listed(self.path(), files), what="removing expired versions")
            log.info("removed %d version(s) kept longer than %g days from %s", len(doomed), keep_days,
                     self.remote.display)
        return len(doomed)

    # -- recover ----------------------------------------------------------------------------------------------

    def recover_into(self, data_dir: Path, steps: list[trash.Step]) -> list[str]:
        """Bring the planned versions into the data folder (a running `start` then syncs them as any change).
        Return the data folder paths written; a step refused (a folder or a link on its way) is logged."""
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=data_dir))
        done: list[str] = []
        try:
            for n, (folder, group) in enumerate(_by_folder(steps).items()):
                files = self._list_file("recover", (s.version.key for s in group))
                self.rclone.run(commands.download_listed(self.path(folder), staging / str(n), files),
                                what="downloading kept versions")
                for step in group:
                    if self._place(data_dir, staging / str(n) / step.version.path, step):
                        done.append(step.target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return done

    def _place(self, data_dir: Path, staged: Path, step: trash.Step) -> bool:
        target = data_dir / step.target
        if not os.path.lexists(staged):
            log.warning("%s is no longer in the trash of %s", step.version.name, self.remote.display)
            return False
        if under_link(data_dir, step.target) or (os.path.isdir(target) and not os.path.islink(target)):
            log.warning("not recovering %s: a folder has its name, or a folder on its way is a link or a file",
                        step.target)
            return False
        if not stat.S_ISLNK(os.lstat(staged).st_mode):
            os.chmod(staged, step.version.mode)
        if os.path.lexists(target):
            aside = conflict_name(step.target, lambda c: os.path.lexists(data_dir / c))
            _keep_aside(target, data_dir / aside)
            log.info("%s exists: this version is kept as %s", step.target, aside)
        return place(data_dir, staged, step.target)

    def recover_in_bucket(self, steps: list[trash.Step], present: set[str]) -> list[str]:
        """Bring the planned versions back in the bucket folder itself, by server-side copies (for a recover
        with no `start` running: the next one restores them). An object there now is copied to a conflict
        name first. `present`: the bucket folder's object names now. Return the paths recovered."""
        manifest_text = self._read_manifest()
        modes, folders = Manifest.load(manifest_text)
        for step in steps:
            there = next((key for key in keys_for(step.target) if key in present), None)
            if there is not None:
                suffix = LINK_SUFFIX if there.endswith(LINK_SUFFIX) else ""
                aside = conflict_name(step.target, lambda c: any(k in present for k in keys_for(c)))
                aside_key = encode_name(aside) + suffix
                self.rclone.run(commands.copy_object(self.remote.path(there), self.remote.path(aside_key)),
                                what="keeping the current version as a conflict copy")
                present.add(aside_key)
                if there in modes:
                    modes[aside_key] = modes[there]
                log.info("%s exists in %s: that version is kept as %s", step.target, self.remote.display, aside)
        for folder, group in _by_folder(steps).items():
            files = self._list_file("recover", (s.version.key for s in group))
            self.rclone.run(commands.copy_listed(self.path(folder), self.remote.path(), files),
                            what="copying kept versions back")
        for step in steps:
            key = step.version.key
            for other in keys_for(step.target):
                modes.pop(other, None)
            if not key.endswith(LINK_SUFFIX) and step.version.mode != DEFAULT_MODE:
                modes[key] = step.version.mode
        self._write_manifest(manifest_text, modes, folders)
        return [s.target for s in steps]

    def _read_manifest(self) -> str:
        try:
            return self.rclone.run(commands.cat(self.remote.path(MANIFEST)), what="reading file modes",
                                   quiet=True).output
        except RcloneError as exc:
            if exc.rclone_exit_code in (EXIT_DIR_NOT_FOUND, EXIT_FILE_NOT_FOUND):
                return ""
            raise

    def _write_manifest(self, before: str, modes: dict[str, int], folders: set[str]) -> None:
        manifest = Manifest()
        manifest.modes, manifest.folders = modes, folders
        text = manifest.dump()
        if Manifest.load(before) == (modes, folders):
            return
        local = self.scratch / f"{self.remote.name}-recover-tree.json"
        local.write_text(text)
        self.rclone.run(commands.put_file(local, self.remote.path(MANIFEST)), what="writing file modes")


def _by_folder(steps: list[trash.Step]) -> dict[str, list[trash.Step]]:
    """The steps grouped by the trash folder their versions are in (one rclone call each)."""
    out: dict[str, list[trash.Step]] = {}
    for step in steps:
        v = step.version
        out.setdefault(trash.folder_of(v.at_ns, v.kind, v.mode), []).append(step)
    return out


def _keep_aside(target: Path, aside: Path) -> None:
    """Keep the file at `target` also as `aside`: a second name for it (no copy, and the name never goes
    missing), or a copy where the file system has no hard links."""
    try:
        os.link(target, aside, follow_symlinks=False)
    except OSError:
        shutil.copy2(target, aside, follow_symlinks=False)
