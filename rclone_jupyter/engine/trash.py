"""One remote's trash: the versions the sync replaced, kept under `.rclone-jupyter/trash/` in the bucket folder
(names and rules: model/trash.py). Listing them, keeping new ones, bringing them back, removing expired ones.

Everything goes through the remote's store (engine/store.py). A listing is LIST requests alone (one per 1,000
versions); keeping a version and a recover into the bucket are server-side copies (no byte crosses this
machine's link); a recover into the data folder downloads into a staging folder first and moves each file
into place never through a link, keeping a file that is there now as a conflict copy first.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from rclone_jupyter.engine.store import Store
from rclone_jupyter.local.tree import STAGING_PREFIX, conflict_name, place
from rclone_jupyter.model import trash
from rclone_jupyter.model.known import LINK_SUFFIX, encode_name, keys_for, under_link
from rclone_jupyter.model.manifest import DEFAULT_MODE, MANIFEST, Manifest, parse

log = logging.getLogger(__name__)


class TrashFolder:
    """The trash of one remote's bucket folder (`root`: the bucket folder's own path, for the name limit;
    `name`: the remote's, as `status` shows it)."""

    def __init__(self, store: Store, root: str, name: str = ""):
        self.store = store
        self.root = root
        self.name = name

    def versions(self) -> list[trash.Kept]:
        """Every version kept in this trash (LIST requests only)."""
        out = []
        for name, size in self.store.sizes(trash.TRASH).items():
            kept = trash.parse(name[len(trash.TRASH) + 1:], size)
            if kept is not None:
                out.append(kept)
        return out

    def keep(self, versions: Iterable[trash.Kept], *, move: bool = False) -> list[trash.Kept]:
        """Keep the bucket's current object of each version under its trash name, by server-side copies
        (`move`: the object is deleted once kept). Return the versions kept; one whose name would be too long
        for the storage is not (nor moved), and is logged."""
        fitting: list[trash.Kept] = []
        for version in versions:
            if trash.fits(self.root, version):
                fitting.append(version)
            else:
                log.warning("%s is not kept in the trash before it is replaced: its name would be longer than "
                            "the storage allows", version.path)
        for folder, group in _by_folder(fitting).items():
            verb = self.store.move_many if move else self.store.copy_many
            verb([v.key for v in group], "", f"{trash.TRASH}/{folder}")
        return fitting

    def bucket_names(self) -> set[str]:
        """The names of every object in the bucket folder now (LIST requests only; the manifest included)."""
        return set(self.store.list())

    def expire(self, versions: Iterable[trash.Kept], now_ns: int, keep_days: float) -> int:
        """Remove the versions kept longer than `keep_days` (one DELETE each). Return how many went."""
        doomed = trash.expired(versions, now_ns, keep_days)
        if doomed:
            self.store.delete(f"{trash.TRASH}/{v.name}" for v in doomed)
            log.info("removed %d version(s) kept longer than %g days from %s", len(doomed), keep_days,
                     self.store.display)
        return len(doomed)

    # -- recover ----------------------------------------------------------------------------------------------

    def recover_into(self, data_dir: Path, steps: list[trash.Step]) -> list[str]:
        """Bring the planned versions into the data folder (a running `start` then saves them as any change).
        Return the data folder paths written; a step refused (a folder or a link on its way) is logged."""
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=_staging_parent(data_dir)))
        done: list[str] = []
        try:
            names = {step: f"{trash.TRASH}/{step.version.name}" for step in steps}
            self.store.download(names.values(), staging)
            for step, name in names.items():
                folder = name[: -len(step.version.key)]  # the trash folder's part of the name, "/" included
                if self._place(data_dir, staging / folder / step.version.path, step):
                    done.append(step.target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return done

    def _place(self, data_dir: Path, staged: Path, step: trash.Step) -> bool:
        target = data_dir / step.target
        if not os.path.lexists(staged):
            log.warning("%s is no longer in the trash of %s", step.version.name, self.store.display)
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
        before = parse(self.store.read(MANIFEST, "reading file modes") or "")
        modes, folders = dict(before.modes), set(before.folders)
        for step in steps:
            there = next((key for key in keys_for(step.target) if key in present), None)
            if there is not None:
                suffix = LINK_SUFFIX if there.endswith(LINK_SUFFIX) else ""
                aside = conflict_name(step.target, lambda c: any(k in present for k in keys_for(c)))
                aside_key = encode_name(aside) + suffix
                self.store.copy(there, aside_key)
                present.add(aside_key)
                if there in modes:
                    modes[aside_key] = modes[there]
                log.info("%s exists in %s: that version is kept as %s", step.target, self.store.display, aside)
        for folder, group in _by_folder(steps).items():
            self.store.copy_many([s.version.key for s in group], f"{trash.TRASH}/{folder}", "")
        for step in steps:
            for other in keys_for(step.target):
                modes.pop(other, None)
            if not step.version.key.endswith(LINK_SUFFIX) and step.version.mode != DEFAULT_MODE:
                modes[step.version.key] = step.version.mode
        if (before.modes, before.folders) != (modes, folders):
            manifest = Manifest()
            manifest.modes, manifest.folders = modes, folders
            self.store.write(MANIFEST, manifest.dump(), "writing file modes")
        return [s.target for s in steps]


def _by_folder(items: Iterable[trash.Kept | trash.Step]) -> dict[str, list]:
    """Versions (or steps) grouped by the trash folder they are in (one store call each)."""
    out: dict[str, list] = {}
    for item in items:
        v = item.version if isinstance(item, trash.Step) else item
        out.setdefault(trash.folder_of(v.at_ns, v.kind, v.mode), []).append(item)
    return out


def _staging_parent(data_dir: Path) -> Path:
    """Where a recover downloads to: beside the data folder when that is the same file system (a rename into
    place still works) and writable, so the watcher sees one event per recovered file instead of every step
    of every download (a burst that can overflow inotify's queue); else inside it, as every download."""
    parent = data_dir.parent
    try:
        if os.stat(parent).st_dev == os.stat(data_dir).st_dev and os.access(parent, os.W_OK | os.X_OK):
            return parent
    except OSError:
        pass
    return data_dir


def _keep_aside(target: Path, aside: Path) -> None:
    """Keep the file at `target` also as `aside`: a second name for it (no copy, and the name never goes
    missing), or a copy where the file system has no hard links."""
    try:
        os.link(target, aside, follow_symlinks=False)
    except OSError:
        shutil.copy2(target, aside, follow_symlinks=False)
