"""JupyterLab's window onto the sync: `GET /rclone-jupyter/api/status`, `POST /rclone-jupyter/api/sync`, and
the undo's `GET /rclone-jupyter/api/history?search=TEXT` and `POST /rclone-jupyter/api/recover` {path, at}.

A Jupyter server extension, loaded into the JupyterLab that `start` runs as its child. It never syncs by
itself: it asks the running daemon over its control channel (rclone_jupyter/client.py), as `rclone-jupyter
status` and `sync --once` do. Every route sits behind JupyterLab's own login; a POST also needs JupyterLab's
XSRF token. The client blocks, so it runs off the tornado loop.
"""

from __future__ import annotations

import json

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from rclone_jupyter.client import ControlClient
from rclone_jupyter.errors import DaemonNotRunning
from rclone_jupyter.jupyterlab.config import RcloneJupyter

ROUTE = "rclone-jupyter/api"
NOT_RUNNING = {"phase": "not running", "running": False, "last_sync": None, "pending": 0, "last_error": None,
               "remotes": {}}


class _Handler(APIHandler):
    def initialize(self, client: ControlClient, config: RcloneJupyter) -> None:
        self.client = client
        self.config_ = config

    def reply(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data, sort_keys=True))  # the daemon masked every secret in its answer

    async def forward(self, call, *args, not_running: dict | None = None) -> None:
        """Answer with the daemon's answer to `call(*args)` (the client blocks: run off the loop); 409 with
        `not_running` and an error when no daemon runs."""
        try:
            answer = await IOLoop.current().run_in_executor(None, call, *args)
        except DaemonNotRunning:
            self.reply({"ok": False, "error": "rclone-jupyter is not running", **(not_running or {})}, status=409)
            return
        self.reply(answer)

    async def status(self) -> dict:
        try:
            return await IOLoop.current().run_in_executor(None, self.client.status)
        except DaemonNotRunning:
            return dict(NOT_RUNNING)


class StatusHandler(_Handler):
    @web.authenticated
    async def get(self) -> None:
        self.reply(await self.status())


class SyncHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        status = await self.status()
        if not status.get("persistent", True):
            self.reply({"ok": False, "error": "no bucket is configured: there is nothing to save to"}, status=409)
            return
        if not status["running"]:
            self.reply({"ok": False, "error": "rclone-jupyter is not running"}, status=409)
            return
        ok, error = await IOLoop.current().run_in_executor(None, self.client.sync, self.config_.sync_timeout)
        self.reply({"ok": ok, "error": error})


class HistoryHandler(_Handler):
    @web.authenticated
    async def get(self) -> None:
        await self.forward(self.client.history, self.get_argument("search", ""),
                           not_running={"versions": [], "count": 0})


class RecoverHandler(_Handler):
    @web.authenticated
    async def post(self) -> None:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("path"), str) or not isinstance(body.get("at"), str):
            self.reply({"ok": False, "error": "give the path of a kept version and its time ('path', 'at')"},
                       status=400)
            return
        await self.forward(self.client.recover, body["path"], body["at"])


def _load_jupyter_server_extension(serverapp) -> None:
    config = RcloneJupyter(parent=serverapp)
    client = ControlClient(config.state_dir)
    base = serverapp.web_app.settings["base_url"]
    options = {"client": client, "config": config}
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, ROUTE, "status"), StatusHandler, options),
        (url_path_join(base, ROUTE, "sync"), SyncHandler, options),
        (url_path_join(base, ROUTE, "history"), HistoryHandler, options),
        (url_path_join(base, ROUTE, "recover"), RecoverHandler, options),
    ])
    serverapp.log.info("rclone-jupyter: sync status at %s (state directory %s)", url_path_join(base, ROUTE),
                       client.state.path)
