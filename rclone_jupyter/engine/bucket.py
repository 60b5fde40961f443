"""The bucket folder's side as the engine sees it: its listings, the objects the data folder cannot hold
(`skipped`), and the versions of a set of names now (one HEAD each, or one LIST per new folder)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from rclone_jupyter.engine.manifest_sync import ManifestSync, without_manifest
from rclone_jupyter.engine.refusals import narrow_down
from rclone_jupyter.engine.store import Store
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.local.tree import cannot_hold
from rclone_jupyter.model.filters import is_noise
from rclone_jupyter.model.known import Known, Version, folders_of, outermost_outside
from rclone_jupyter.model.manifest import MANIFEST
from rclone_jupyter.state import write_private

log = logging.getLogger(__name__)

# Above this many new names in one push, their absence in the bucket is checked with one LIST per new folder
# instead of one HEAD per name (a `git clone` of 1,500 files: a few LISTs, not 1,500 HEADs).
HEAD_LIMIT = 8


class Bucket:
    def __init__(self, store: Store, manifest: ManifestSync):
        self.store = store
        self.manifest = manifest
        # Objects the data folder cannot hold (a `..` in the name, a name too long): never restored, never
        # deleted, shown in the status. {name: why}
        self.skipped: dict[str, str] = {}
        self.skipped_file: Path | None = None  # where all of them are listed (the engine sets it)
        # Objects whose download the storage refused (a 403 on one object), with the version refused: left in
        # the bucket and out of the baseline (nothing here deletes them), shown in the status, and downloaded
        # again once the bucket holds another version. {name: (version, why)}
        self.refused: dict[str, tuple[Version, str]] = {}
        self._preset: dict[str, Version] | None = None

    def skip(self, found: Mapping[str, str]) -> None:
        """Objects the data folder cannot hold: noted in `skipped` (the status lists the first 50, the full list
        is in `skipped_file`), with one WARNING for all the new ones."""
        new = {name: why for name, why in found.items() if name not in self.skipped}
        if not new:
            return
        self.skipped.update(new)
        first = sorted(new.items())[:5]
        log.warning("not restoring %d object(s) from %s that the data folder cannot hold: %s%s. They stay in the "
                    "bucket untouched; rename or remove them there to get them here. `rclone-jupyter status` lists "
                    "them%s", len(new), self.store.display,
                    "; ".join(f"{name!r}: {why}" for name, why in first), "; ..." if len(new) > len(first) else "",
                    f" (all of them in {self.skipped_file})" if self.skipped_file else "")
        if self.skipped_file is None:
            return
        try:
            write_private(self.skipped_file, "".join(f"{name}\t{why}\n" for name, why in sorted(self.skipped.items())))
        except OSError as exc:
            log.warning("cannot write the list of skipped objects %s (%s)", self.skipped_file, exc.strerror or exc)

    def skipped_shown(self, limit: int = 50) -> dict:
        """The status's fields for the skipped objects (those refused too): the first `limit`, how many, and
        where all of those the data folder cannot hold are."""
        shown = {**self.skipped, **{name: f"the storage refused its download: {why}"
                                    for name, (_version, why) in self.refused.items()}}
        return {"skipped": dict(sorted(shown.items())[:limit]), "skipped_count": len(shown),
                "skipped_file": str(self.skipped_file) if self.skipped and self.skipped_file else None}

    def refuse(self, found: Mapping[str, str], listing: Mapping[str, Version]) -> None:
        """The storage refused to download these objects ({name: why}) as `listing` shows them: one WARNING for
        the new ones; they are left out of the downloads until the bucket holds another version."""
        new = {name: why for name, why in found.items() if name not in self.refused}
        self.refused.update({name: (listing[name], why) for name, why in found.items() if name in listing})
        if new:
            first = sorted(new.items())[:3]
            log.warning("cannot download %d file(s) from %s, the storage refuses them: %s%s. They stay in the bucket, "
                        "and a copy here, if there is one, is kept; everything else is brought in as usual. They are "
                        "tried again when they change in the bucket. `rclone-jupyter status` lists them", len(new),
                        self.store.display, "; ".join(f"{name!r}: {why}" for name, why in first),
                        "; ..." if len(new) > len(first) else "")

    def downloadable(self, names: list[str], listing: Mapping[str, Version]) -> list[str]:
        """The names a download may ask for: not one the storage refused as the listing still shows it (one
        gone from the bucket, or changed there, is forgotten as refused)."""
        for name, (version, _why) in list(self.refused.items()):
            if listing.get(name) != version:
                del self.refused[name]
        return [name for name in names if name not in self.refused]

    def use_listing(self, listing: dict[str, Version]) -> None:
        """The pre-flight's listing of the bucket folder, taken just before: the restore uses it instead of
        listing the folder again. It is taken over, not copied (a million objects): the pre-flight's is
        unfiltered, so noise and heartbeats are dropped from it here."""
        for name in [name for name in listing if name != MANIFEST and is_noise(name)]:
            del listing[name]
        self._preset = listing

    def files(self, *, missing_ok: bool = True, note_manifest: bool = True) -> dict[str, Version]:
        """The bucket folder's files now (LIST requests only), the manifest noted apart (unless
        `note_manifest` is False: a dry run); all of them, even those the data folder cannot hold."""
        preset, self._preset = self._preset, None
        listing = preset if preset is not None else self.store.list(missing_ok=missing_ok)
        return without_manifest(listing, self.manifest if note_manifest else None)

    def listing(self, *, note_manifest: bool = True) -> dict[str, Version]:
        """The bucket folder's files now that the data folder can hold (a missing folder is an empty one)."""
        files = self.files(note_manifest=note_manifest)
        self.skip(cannot_hold(files))  # skipped, never fatal
        for name in self.skipped:  # taken out in place: a million objects are not copied
            files.pop(name, None)
        return files

    def versions(self, keys: list[str], known: Mapping[str, Known],
                 refused: Callable[[dict[str, str]], None] | None = None) -> dict[str, Version]:
        """Size and modtime of these objects in the bucket now (missing ones are left out).

        One HEAD a name, except for many names in folders the bucket never held (a `git clone`): one LIST of
        each such folder proves them absent. `refused`: a check the storage refused for good (a 403 on one
        object) is made again name by name, and the names it refuses are told to `refused` ({name: why}) and
        left out; without it the failure is raised.
        """
        new_folders, rest = new_folders_of(keys, known) if len(keys) > HEAD_LIMIT else ([], keys)
        out: dict[str, Version] = {}
        for folder in new_folders:
            out.update(self.store.list(folder))
        try:
            out.update(self.store.stat(rest))
        except RcloneError as exc:
            narrow_down(exc, self.store, rest, lambda key: out.update(self.store.stat([key])), refused)
        wanted = set(keys)
        return {key: version for key, version in out.items() if key in wanted}


def new_folders_of(keys: list[str], known: Mapping[str, Known]) -> tuple[list[str], list[str]]:
    """Group names by the topmost folder on their way that holds no known object; the rest stay names."""
    known_dirs = folders_of(known)
    folders: set[str] = set()
    rest = []
    for key in keys:
        top = outermost_outside(key, known_dirs)
        if top is None:
            rest.append(key)
        else:
            folders.add(top)
    # A folder inside another new one is listed with it.
    tops = sorted(f for f in folders if not any(f.startswith(o + "/") for o in folders))
    return sorted(siblings_listed_once(tops)), rest


# New folders side by side (a `pip install` makes one per package in site-packages) are listed with one listing
# of the folder that holds them: one round trip (plus a page per 1,000 objects) instead of one per new folder,
# which at a 60 ms round trip made 40 new packages cost 2.4 s before the first upload.
SIBLINGS = 4


def siblings_listed_once(tops: list[str]) -> set[str]:
    """Given new folders, return the folders to list: where SIBLINGS or more share a parent (not the bucket
    folder's root, whose listing is the whole folder), that parent instead of each of them."""
    by_parent: dict[str, list[str]] = {}
    for folder in tops:
        by_parent.setdefault(folder.rpartition("/")[0], []).append(folder)
    out: set[str] = set()
    for parent, children in by_parent.items():
        out |= {parent} if parent and len(children) >= SIBLINGS else set(children)
    return out
