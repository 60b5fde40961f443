"""The server extension's settings: its own traitlets config, never the daemon's whole environment."""

from __future__ import annotations

import os

from traitlets import Float, Unicode, default
from traitlets.config import Configurable

from rclone_jupyter.config.settings import state_dir_from


class RcloneJupyter(Configurable):
    """`c.RcloneJupyter.state_dir = ...` in a Jupyter config file, or `--RcloneJupyter.state_dir=...`."""

    state_dir = Unicode(
        help="The running rclone-jupyter's state folder, where its control socket is. Default: "
             "RCLONE_JUPYTER_STATE_DIR (which `rclone-jupyter start` sets for its JupyterLab), else the "
             "default state folder, as `rclone-jupyter status` finds it.",
    ).tag(config=True)

    sync_timeout = Float(
        300.0,
        help="Seconds \"Save now\" waits for the daemon's answer; a large first upload may need them.",
    ).tag(config=True)

    @default("state_dir")
    def _state_dir_default(self) -> str:
        return str(state_dir_from(os.environ))
