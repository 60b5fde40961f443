"""What is noise, not a change: one list, used by the watcher and turned into rclone --exclude flags."""

from __future__ import annotations

import re
from fnmatch import translate

# Matched against every component of a relative path.
NOISE_NAMES = (
    ".~*",  # Jupyter's atomic-save temporary files (jupyter_server writes .~name, then renames)
    ".ipynb_checkpoints",  # Jupyter's own checkpoints: derived, and rewritten on every save
    "*.swp", "*.swx", ".#*",  # editor swap and lock files
    ".Trash-*",  # a desktop trash folder, should one ever appear
)
# Matched against the whole relative path: files this container writes about itself.
LOCAL_ONLY = ("welcome.txt",)
# Top-level folders of the bucket folder that belong to rclone-jupyter itself (daemon/presence.py's heartbeats,
# the manifest, model/trash.py's kept versions): never restored, never synced.
BUCKET_ONLY = (".rclone-jupyter",)
HEARTBEATS = BUCKET_ONLY[0] + "/nodes"  # daemon/presence.py: one small object per running container


# Any component of the path matching any NOISE_NAMES pattern: one regex, as it runs on every watcher event.
_NOISE_PART = re.compile(r"(?:^|.*/)(?:%s)(?:/.*)?\Z" % "|".join(
    translate(pattern).removeprefix("(?s:").removesuffix(")\\Z").replace(".*", "[^/]*")
    for pattern in NOISE_NAMES), re.S)


def is_noise(rel: str) -> bool:
    """Given a path relative to the data folder, return True if it must never be synced."""
    if rel in LOCAL_ONLY or rel.split("/", 1)[0] in BUCKET_ONLY:
        return True
    return _NOISE_PART.match(rel) is not None


def rclone_excludes() -> tuple[str, ...]:
    """The same rules as rclone filter flags (for restore and bisync, which list whole trees)."""
    flags: list[str] = []
    for pattern in NOISE_NAMES:
        flags += ["--exclude", f"{pattern}", "--exclude", f"{pattern}/**"]
    for rel in LOCAL_ONLY:
        flags += ["--exclude", f"/{rel}"]
    for folder in BUCKET_ONLY:
        flags += ["--exclude", f"/{folder}/**"]
    return tuple(flags)
