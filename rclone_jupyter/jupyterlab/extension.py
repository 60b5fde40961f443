"""JupyterLab's window onto the sync: `GET /rclone-jupyter/api/status` and `POST /rclone-jupyter/api/sync`.

A Jupyter server extension, loaded into the JupyterLab that `start` runs as its child. It never syncs by
itself: it reads the status file the daemon writes (as `rclone-jupyter status` does) and asks the daemon for a
full sync (as `rclone-jupyter sync --once` does). Both routes sit behind JupyterLab's own login; the POST also
needs JupyterLab's XSRF token.
"""

from __future__ import annotations

import json
import os

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from rclone_jupyter.daemon import control
from rclone_jupyter.config import settings as settings_mod
from rclone_jupyter.errors import ConfigError, DaemonNotRunning
from rclone_jupyter.logs import SecretMask
from rclone_jupyter.state import StateDir
from rclone_jupyter.daemon.status import current

SYNC_TIMEOUT = 300.0  # the browser waits this long for "Save now"; a large first upload may need it
ROUTE = "rclone-jupyter/api"


class _Handler(APIHandler):
    def initialize(self, state: StateDir, mask: SecretMask) -> None:
        self.state = state
        self.mask = mask

    def reply(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        # The daemon masks secrets before they reach its status file; mask again in case one slipped in.
        self.finish(self.mask.mask(json.dumps(data, sort_keys=True)))


class StatusHandler(_Handler):
    @web.authenticated
    def get(self) -> None:
        self.reply(current(self.state))


class SyncHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        if not current(self.state).get("persistent", True):
            self.reply({"ok": False, "error": "no bucket is configured: there is nothing to save to"}, status=409)
            return
        # request_sync blocks until the daemon answers: keep it off the event loop.
        try:
            ok, error = await IOLoop.current().run_in_executor(None, control.request_sync, self.state.path,
                                                               SYNC_TIMEOUT)
        except DaemonNotRunning as exc:
            self.reply({"ok": False, "error": str(exc)}, status=409)
            return
        self.reply({"ok": ok, "error": error})


def _known_secrets(env) -> tuple[str, ...]:
    """The secrets in JupyterLab's environment (cloud keys), to mask; none when the settings do not load."""
    try:
        return settings_mod.load(env).secrets()
    except (ConfigError, OSError):
        return ()


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "rclone_jupyter.jupyterlab.extension"}]


def _load_jupyter_server_extension(serverapp) -> None:
    # `start` passes its (absolute) state dir in JupyterLab's environment; a plain `jupyter lab` falls back to
    # the default, as `rclone-jupyter status` does.
    state = StateDir(settings_mod.state_dir_from(os.environ))
    mask = SecretMask()
    mask.add(*_known_secrets(os.environ))
    base = serverapp.web_app.settings["base_url"]
    options = {"state": state, "mask": mask}
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, ROUTE, "status"), StatusHandler, options),
        (url_path_join(base, ROUTE, "sync"), SyncHandler, options),
    ])
    serverapp.log.info("rclone-jupyter: sync status at %s (state directory %s)", url_path_join(base, ROUTE),
                       state.path)
