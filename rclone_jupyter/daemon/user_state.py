"""JupyterLab's user settings and workspaces, and the terminal's shell history, kept in the data folder.

They live in one hidden folder of the data folder, so the sync carries them like any file (the same loss
window, both versions kept on a conflict) and a new container gets them back before JupyterLab starts.
Hidden: JupyterLab's file browser does not list it (ContentsManager.allow_hidden is off). Not under
`.rclone-jupyter/`, which is the daemon's own part of the bucket folder and never synced (model/filters.py).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER = ".rclone-jupyter-lab"  # in the data folder; README ("JupyterLab's settings ...") says how to reset
APPEND_HISTORY = "history -a"  # bash writes each command to HISTFILE at the next prompt, not only at exit


def folder(data_dir: Path) -> Path:
    return data_dir / FOLDER


def paths(data_dir: Path) -> dict[str, Path]:
    """{environment variable: the kept path it names}."""
    kept = folder(data_dir)
    return {
        "JUPYTERLAB_SETTINGS_DIR": kept / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": kept / "workspaces",
        "HISTFILE": kept / "bash_history",
    }


def environment(data_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Given the data folder and the daemon's environment, return what JupyterLab's environment needs.

    A value the user set in `base` is theirs and stays (it then points outside what is kept)."""
    wanted = {name: str(path) for name, path in paths(data_dir).items()}
    env = {name: value for name, value in wanted.items() if not base.get(name)}
    command = base.get("PROMPT_COMMAND", "")
    if APPEND_HISTORY not in command:
        env["PROMPT_COMMAND"] = f"{APPEND_HISTORY}; {command}" if command else APPEND_HISTORY
    # JupyterLab's terminal runs $SHELL, else `sh`: dash in the images, which keeps no history at all.
    bash = shutil.which("bash", path=base.get("PATH"))
    if not base.get("SHELL") and bash:
        env["SHELL"] = bash
    return env


def prepare(data_dir: Path, base: Mapping[str, str]) -> dict[str, str]:
    """Create the folder (bash cannot append to a history file whose folder is missing); return environment().

    A link among these names (restored from the bucket) is never written through, and a file where the folder
    should be is left alone: then nothing is kept this time, with a WARNING."""
    kept = folder(data_dir)
    links = [path for path in (kept, *paths(data_dir).values()) if path.is_symlink()]
    if links or (kept.exists() and not kept.is_dir()):
        log.warning("%s is %s: JupyterLab's settings, workspaces and the shell history are not kept by this "
                    "container (move it away to keep them)", links[0] if links else kept,
                    "a symbolic link" if links else "not a folder")
        return {}
    kept.mkdir(exist_ok=True)
    return environment(data_dir, base)
