"""The manifest (model/manifest.py) between the data folder and the bucket: read at restore, written when a
mode or an empty folder changed, merged when another container changed it.

The listing tells us when the manifest changed: `listed` is its stamp as the last listing showed it (None
after our own upload, until listed again, when `size` recognises it as ours).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from rclone_jupyter.engine.store import Store
from rclone_jupyter.local.tree import STAGING_PREFIX, is_empty_folder, place, unrepresentable
from rclone_jupyter.model.known import Known, Version, local_name, under_link
from rclone_jupyter.logs import human_size
from rclone_jupyter.model.manifest import MANIFEST, MAX_BYTES, Manifest, Parsed, parse

log = logging.getLogger(__name__)


class ManifestSync:
    def __init__(self, store: Store, data_dir: Path):
        self.store = store
        self.data_dir = data_dir
        self.manifest = Manifest()
        self.listed: Version | None = None
        self.seen: Version | None = None
        self.size: int | None = None

    def saw(self, version: Version | None) -> None:
        """A listing showed the manifest as `version` (None: not there)."""
        self.seen = version  # the restore alone takes it as read (after_restore): a later one is another's

    def read(self) -> Parsed:
        """The bucket's manifest, validated as untrusted input (model/manifest.py): at most MAX_BYTES of it are
        read (refused without a GET when listed bigger), and one WARNING says what was left out."""
        if self.seen is not None and self.seen.size > MAX_BYTES:
            parsed = Parsed(problems=[f"the whole manifest: {human_size(self.seen.size)}, over the "
                                      f"{human_size(MAX_BYTES)} limit"])
        else:
            text = self.store.read(MANIFEST, "reading file modes", head=MAX_BYTES + 1)
            parsed = parse(text or "")  # gone meanwhile: no modes to apply
        if parsed.problems:
            log.warning("%s in %s: %d entr%s not applied as written (%s%s). Files are restored; only these modes "
                        "or empty folders are not. rclone-jupyter rewrites it at the next change of a mode or an "
                        "empty folder", MANIFEST, self.store.display, len(parsed.problems),
                        "y" if len(parsed.problems) == 1 else "ies", "; ".join(parsed.problems[:5]),
                        "; ..." if len(parsed.problems) > 5 else "")
        return parsed

    def write(self) -> None:
        """Upload the manifest if it changed (one PUT)."""
        if not self.manifest.dirty:
            return
        text = self.manifest.dump()
        self.store.write(MANIFEST, text, "file modes")
        self.manifest.dirty = False
        self.listed, self.size = None, len(text.encode())

    def after_restore(self, restored: Iterable[str]) -> None:
        """The restore wrote these objects: give them their modes, and make the empty folders."""
        self.listed = self.seen  # what the restore's listing showed (None: there was none)
        if self.listed is None:
            return
        parsed = self.read()
        modes, folders = parsed.modes, parsed.folders
        self.manifest.modes.update(modes)
        self.manifest.folders |= folders
        for key in restored:
            self.manifest.apply(self.data_dir, key)
        self.make_folders(folders)

    def merge(self, changed_here: Callable[[str], bool], known: Mapping[str, Known]) -> None:
        """The manifest changed elsewhere: take its modes for every file not changed here, and apply them."""
        seen = self.seen
        if seen is None or seen == self.listed:
            return
        if self.listed is None and self.size == seen.size:
            self.listed = seen  # our own upload, listed now
            return
        parsed = self.read()
        modes, folders = parsed.modes, parsed.folders
        self.listed, self.size = seen, seen.size
        manifest = self.manifest
        for key in set(modes) | set(manifest.modes):
            if changed_here(local_name(key)) or key not in known:
                continue
            if modes.get(key) != manifest.modes.get(key):
                if key in modes:
                    manifest.modes[key] = modes[key]
                else:
                    manifest.modes.pop(key, None)
                manifest.apply(self.data_dir, key)
        new = {f for f in folders - manifest.folders if not changed_here(local_name(f))}
        gone = {f for f in manifest.folders - folders if not changed_here(local_name(f))}
        manifest.folders = (manifest.folders | new) - gone
        self.make_folders(new)
        for name in sorted(gone, key=lambda f: -f.count("/")):
            rel = local_name(name)
            if not under_link(self.data_dir, rel) and is_empty_folder(self.data_dir / rel):
                os.rmdir(self.data_dir / rel)

    def make_folders(self, names: Iterable[str]) -> None:
        """Create the manifest's empty folders here (never through a link)."""
        for name in sorted(names):
            rel = local_name(name)
            if unrepresentable(name) or os.path.lexists(self.data_dir / rel):
                continue
            marker = self.data_dir / f"{STAGING_PREFIX}folder"
            marker.mkdir(exist_ok=True)
            if not place(self.data_dir, marker, rel):
                marker.rmdir()


def without_manifest(listing: dict[str, Version], manifest: ManifestSync | None) -> dict[str, Version]:
    """The listing's files: the manifest taken out of it (in place: a million objects are not copied), its
    stamp handed to `manifest` (if any)."""
    stamp = listing.pop(MANIFEST, None)
    if manifest is not None:
        manifest.saw(stamp)
    return listing
