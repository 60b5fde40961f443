"""welcome.txt in the data folder: what this container is and where the user's files go."""

from __future__ import annotations

import os
from pathlib import Path

from rclone_jupyter.config.settings import Settings
from rclone_jupyter.logs import human_size


def text(settings: Settings, image: str = "", *, to_come: tuple[int, int] = (0, 0)) -> str:
    """`to_come`: (files, bytes) of the large files still on their way when JupyterLab started."""
    lines = ["Welcome to JupyterLab, run by rclone-jupyter.", ""]
    if image:
        lines.append(f"Image: {image}")
    lines.append(f"Data folder: {settings.data_dir}")
    if settings.persistent:
        lines.append("Persistence: ON. Every file you save here is copied to:")
        lines += [f"  - {remote.display}" for remote in settings.remotes]
        lines += [
            f"Changes are uploaded about {settings.timing.quiet_period:g} s after you stop writing "
            f"(at most {settings.timing.max_delay:g} s later), and flushed when the container is stopped.",
            "See the sync state from a terminal:  rclone-jupyter status",
            "Save everything right now:          rclone-jupyter sync --once",
        ]
        files, size = to_come
        if files:
            lines += [
                "",
                f"Large files still arriving: {files} file(s), {human_size(size)}, smallest first. Each appears",
                "under its name only once it is whole. The status bar says 'Restoring ...' until all are here.",
                "Wait for them in a script or notebook: rclone-jupyter wait [PATH ...]",
            ]
    else:
        lines += [
            "Persistence: OFF. No bucket is configured, so everything here is LOST when this container stops.",
            "Set AWS_S3_BUCKET_FOLDER (with AWS keys), AZURE_CONTAINER_URL (with a SAS token) or",
            "GOOGLE_BUCKET_FOLDER (with a service account key) to keep your work.",
        ]
    lines += ["", "This file is written by the container at each start and is not synced."]
    return "\n".join(lines) + "\n"


def write(settings: Settings, image: str = "", *, to_come: tuple[int, int] = (0, 0)) -> Path:
    """Write welcome.txt; a link of that name is replaced, never written through (its target may be anywhere)."""
    path = settings.data_dir / "welcome.txt"
    if path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text(settings, image, to_come=to_come))
    return path
