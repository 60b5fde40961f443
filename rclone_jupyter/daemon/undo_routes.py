"""The control channel's undo routes (daemon/control.py): what the Sync status panel's "Recently deleted or
replaced" shows and its Recover buttons do, the same work as `rclone-jupyter history` and `recover` (undo.py).

`GET /history?search=TEXT`: the newest kept versions (at most `limit`) whose path contains TEXT (any case),
with how many there are in all and for how long they are kept. `POST /recover` {"path", "at"}: bring that
file back as it was at that time; a file there now is kept as a conflict copy first. The recovered file is
written into the data folder and saved as any change.
"""

from __future__ import annotations

import logging

from rclone_jupyter import undo
from rclone_jupyter.config.settings import Settings
from rclone_jupyter.daemon.control import Request
from rclone_jupyter.errors import RcloneJupyterError
from rclone_jupyter.model import trash

log = logging.getLogger(__name__)

LISTED = 50


class UndoRoutes:
    def __init__(self, settings: Settings, limit: int = LISTED):
        self.settings = settings
        self.limit = limit

    def routes(self) -> dict:
        return {("GET", "/history"): self.history, ("POST", "/recover"): self.recover}

    def _kept(self) -> dict:
        keep = self.settings.keep
        return {"keep_days": keep.days if keep.on else 0, "keep_every_minutes": keep.every / 60 if keep.on else None}

    def history(self, request: Request) -> tuple[int, dict]:
        if not self.settings.persistent:
            return 200, {"ok": False, "error": "no bucket is configured: nothing is kept", "versions": [],
                         "count": 0, **self._kept()}
        search = (request.query.get("search") or [""])[0].strip().lower()
        try:
            records = undo.history(self.settings, "")
        except RcloneJupyterError as exc:
            return 200, {"ok": False, "error": str(exc), "versions": [], "count": 0, **self._kept()}
        if search:
            records = [r for r in records if search in r["path"].lower()]
        return 200, {"ok": True, "error": None, "versions": records[: self.limit], "count": len(records),
                     **self._kept()}

    def recover(self, request: Request) -> tuple[int, dict]:
        path, at = request.body.get("path"), request.body.get("at")
        if not isinstance(path, str) or not path.strip("/") or not isinstance(at, str):
            return 400, {"ok": False, "error": "give the path of a kept version and its time ('path', 'at')"}
        data_dir = self.settings.data_dir
        try:
            rel = undo.data_path(data_dir, path, cwd=str(data_dir))
            at_ns = trash.parse_time(at)
        except ValueError as exc:
            return 400, {"ok": False, "error": str(exc)}
        try:
            done, asides, _where = undo.recover(self.settings, rel, at_ns)
        except RcloneJupyterError as exc:
            return 200, {"ok": False, "error": str(exc)}
        if not done:
            return 200, {"ok": False, "error": f"nothing is kept of {rel} at {at}"}
        log.info("recovered %d file(s) of %s (%s) from the trash", len(done), rel, at)
        return 200, {"ok": True, "error": None, "recovered": done, "kept_aside": asides}
