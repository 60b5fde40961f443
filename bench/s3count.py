"""A local S3 server that counts requests by kind: `rclone serve s3` (or moto's server) behind a counting proxy.

The proxy forwards every request byte for byte (the Host header included: SigV4 signs it) to `rclone serve
s3` on another loopback port, and counts it as LIST, HEAD, GET, PUT, COPY, DELETE, POST or OTHER. Counters
are read and reset in-process (the benchmarks run the proxy in a thread) or over HTTP at `/__counts__`.

Why a proxy and not the server's own log: `rclone serve s3` does not log one line per request, and a proxy
counts exactly what a real S3 bill would count, whoever sends it (our daemon, plain rclone, bisync).
"""

from __future__ import annotations

import collections
import http.client
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

VENV_BIN = Path(sys.executable).parent
RCLONE = os.environ.get("RCLONE_BINARY") or str(VENV_BIN / "rclone")
KEY_ID = "benchkeyid"
SECRET = "benchSecret-not-a-real-one"
KINDS = ("LIST", "HEAD", "GET", "PUT", "COPY", "DELETE", "POST", "OTHER")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def kind_of(method: str, target: str, headers) -> str:
    """Given a request line and headers, return its kind as an S3 bill would name it."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    key = parts.path.lstrip("/").partition("/")[2]  # path style: /bucket/key
    if method == "GET":
        if not key or "list-type" in query or "prefix" in query or "delimiter" in query:
            return "LIST"
        return "GET"
    if method == "PUT":
        return "COPY" if headers.get("x-amz-copy-source") else "PUT"
    if method in ("HEAD", "DELETE", "POST"):
        return method
    return "OTHER"


class Counter:
    def __init__(self):
        self._lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.bytes_in = 0

    def add(self, kind: str, n_bytes: int = 0) -> None:
        with self._lock:
            self.counts[kind] += 1
            self.bytes_in += n_bytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {k: self.counts.get(k, 0) for k in KINDS}

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()
            self.bytes_in = 0


def _make_handler(upstream_port: int, counter: Counter):
    local = threading.local()

    def upstream() -> http.client.HTTPConnection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=300)
        return conn

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _forward(self):
            if self.path == "/__counts__":
                body = repr(counter.snapshot()).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
            counter.add(kind_of(self.command, self.path, self.headers), length)
            conn = upstream()
            # Headers go out exactly as received (Host included: the signature covers it).
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                conn.putheader(name, value)
            conn.endheaders()
            if chunked:
                while True:
                    line = self.rfile.readline()
                    conn.send(line)
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    data = self.rfile.read(size + 2)
                    conn.send(data)
                    if size == 0:
                        break
            else:
                remaining = length
                while remaining:
                    chunk = self.rfile.read(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    conn.send(chunk)
                    remaining -= len(chunk)
            try:
                resp = conn.getresponse()
            except (http.client.HTTPException, OSError):
                local.conn = None
                conn.close()
                raise
            self.send_response_only(resp.status, resp.reason)
            body_length = resp.getheader("Content-Length")
            for name, value in resp.getheaders():
                if name.lower() in ("transfer-encoding", "connection"):
                    continue
                self.send_header(name, value)
            if body_length is None and self.command != "HEAD" and resp.status not in (204, 304):
                data = resp.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.end_headers()
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                self.wfile.write(chunk)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _forward

    return Handler


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class CountingS3:
    """`rclone serve s3 ROOT` on a private port, and the counting proxy in front of it.

    `endpoint` is the proxy; `direct_endpoint` skips the counting (for throughput runs, and for writes made
    "elsewhere" that must not be counted). Seed `serve s3` by writing into ROOT/bucket/... before start():
    it caches folder listings, so files written into ROOT behind a running server may stay unseen.
    """

    kind = "rclone serve s3"

    def __init__(self, root: Path, bucket: str = "bucket"):
        self.root = root
        self.bucket = bucket
        self.counter = Counter()
        self.upstream_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.server: _Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def direct_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}"

    def _start_upstream(self) -> None:
        (self.root / self.bucket).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
        env.update(RCLONE_CONFIG=os.devnull, RCLONE_AUTH_KEY=f"\"{KEY_ID},{SECRET}\"")  # a quoted CSV value: one pair
        self.proc = subprocess.Popen(
            [RCLONE, "serve", "s3", str(self.root), "--addr", f"127.0.0.1:{self.upstream_port}",
             "--log-level", "ERROR"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.upstream_port)

    def start(self) -> "CountingS3":
        self._start_upstream()
        self.server = _Server(("127.0.0.1", 0), _make_handler(self.upstream_port, self.counter))
        threading.Thread(target=self.server.serve_forever, name="s3count", daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def env(self, folder: str = "bench", *, direct: bool = False) -> dict[str, str]:
        """The rclone-jupyter environment for this server (AWS_* variables)."""
        return {
            "AWS_S3_BUCKET_FOLDER": f"{self.bucket}/{folder}",
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": self.direct_endpoint if direct else self.endpoint,
        }

    def rclone_env(self, name: str = "bench", *, direct: bool = False) -> dict[str, str]:
        """Environment that defines an rclone remote NAME for plain-rclone runs (no config file needed)."""
        prefix = f"RCLONE_CONFIG_{name.upper()}_"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
        env.update({
            "RCLONE_CONFIG": os.devnull,
            prefix + "TYPE": "s3",
            prefix + "PROVIDER": "Other",
            prefix + "ENDPOINT": self.direct_endpoint if direct else self.endpoint,
            prefix + "ACCESS_KEY_ID": KEY_ID,
            prefix + "SECRET_ACCESS_KEY": SECRET,
            prefix + "REGION": "us-east-1",
            prefix + "FORCE_PATH_STYLE": "true",
            prefix + "NO_CHECK_BUCKET": "true",
        })
        return env


class MotoS3(CountingS3):
    """moto's S3 server (AWS-like: Last-Modified is the upload time, ETag the MD5; objects in memory) on a
    private port, behind the same counting proxy. Seed it after start() through `direct_endpoint`.

    moto's own log has one line per request too (`"GET /bucket/key HTTP/1.1" 200`), but the proxy counts the
    same way on both servers (LIST vs GET needs the query string, COPY the header), so both tables compare.
    """

    kind = "moto"

    def _start_upstream(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RCLONE_", "AWS_"))}
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.upstream_port)],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.upstream_port, timeout=60)
        # Create the bucket (moto checks no signature; one unsigned PUT is enough).
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        conn.request("PUT", f"/{self.bucket}", headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        if resp.status >= 300:
            raise RuntimeError(f"moto refused to create the bucket: {resp.status}")


SERVERS = {"rclone": CountingS3, "moto": MotoS3}


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description="A counting local S3 server.")
    parser.add_argument("root", nargs="?", help="folder for `rclone serve s3` (default: a temporary one)")
    parser.add_argument("--server", choices=sorted(SERVERS), default="rclone")
    args = parser.parse_args()
    root = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="s3count-"))
    with SERVERS[args.server](root) as s3:
        print(f"S3 endpoint {s3.endpoint} (counts at {s3.endpoint}/__counts__), key {KEY_ID}/{SECRET}, "
              f"{s3.kind}"
              f"{' (buckets = folders of ' + str(root) + ')' if args.server == 'rclone' else ''}. Ctrl-C stops.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
