"""The daemon's control channel: a small HTTP server on a unix socket in the private state folder.

`rclone-jupyter status`, `sync --once` and the JupyterLab extension ask here (rclone_jupyter/client.py) and get
the answer in the same call: each HTTP request is its own connection, so each caller gets the answer to its
own request. The state folder is 0700, so only its owner can connect: the folder is the authentication.

Routes are a table of (method, path) -> function(Request) -> (HTTP status, JSON object); the supervisor fills
it (`GET /status`, `POST /sync`). A new route is one more entry. Every answer is masked for secrets.
"""

from __future__ import annotations

import json
import logging
import os
import socketserver
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from rclone_jupyter.logs import secret_mask
from rclone_jupyter.unixhttp import socket_address

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # a request body is a few paths at most


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    body: Mapping = field(default_factory=dict)


Route = Callable[[Request], "tuple[int, dict]"]


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    # Handler threads are not daemon threads: close() joins them, so none outlives the server.
    daemon_threads = False
    block_on_close = True
    request_queue_size = 64  # callers at once (a CLI, several browser tabs) wait in the backlog, never refused

    def __init__(self, address: str, routes: Mapping[tuple[str, str], Route]):
        self.routes = routes
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A caller that connected sends its request within this many seconds, or its connection is closed: the
    # stop joins every handler thread, and one waiting forever on a silent caller would hang the exit.
    timeout = 5.0

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)
        route = self.server.routes.get((method, url.path))
        if route is None:
            known = any(path == url.path for _, path in self.server.routes)
            self._send(405 if known else 404, {"error": f"no route {method} {url.path}"})
            return
        try:
            request = Request(method, url.path, parse_qs(url.query), self._body())
        except ValueError as exc:
            self._send(400, {"error": f"the request body is not a JSON object: {exc}"})
            return
        try:
            status, answer = route(request)
        except Exception as exc:  # noqa: BLE001 - a bug in a route must not kill the channel; say what happened
            log.exception("the control route %s %s failed", method, url.path)
            status, answer = 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        self._send(status, answer)

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError(f"{length} bytes is too long")
        data = json.loads(self.rfile.read(length) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("not an object")
        return data

    def _send(self, status: int, answer: dict) -> None:
        body = secret_mask.mask(json.dumps(answer, sort_keys=True)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        log.debug("control: " + format, *args)


class ControlServer:
    """Serves `routes` on the unix socket `path` from its own thread until stop()."""

    def __init__(self, path: Path, routes: Mapping[tuple[str, str], Route]):
        self.path = path
        self.routes = dict(routes)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> "ControlServer":
        # Only the daemon holding the state folder's lock starts one: a socket file left here is stale.
        self.path.unlink(missing_ok=True)
        with socket_address(self.path) as address:
            self._server = _Server(address, self.routes)
        os.chmod(self.path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="control", daemon=True)
        self._thread.start()
        log.debug("control channel on %s", self.path)
        return self

    def stop(self) -> None:
        """Stop taking requests, wait for the ones being answered, remove the socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()  # joins the handler threads
        self.path.unlink(missing_ok=True)
        self._server = None
