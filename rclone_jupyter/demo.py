"""The embedded default: a local S3 server (rclone serve s3) in a folder, and `start` pointed at it."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

from rclone_jupyter import logs
from rclone_jupyter.config import settings as settings_mod
from rclone_jupyter.rclone.runner import find_binary
from rclone_jupyter.daemon.supervisor import Supervisor

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_s3(binary: str, root: Path, port: int, key_id: str, secret: str, log_file: Path) -> subprocess.Popen:
    """Start `rclone serve s3` on 127.0.0.1:port for `root` (its sub-folders are buckets); wait until it answers.

    The keys go in through the environment (RCLONE_AUTH_KEY), not the command line.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env["RCLONE_CONFIG"] = os.devnull
    # rclone reads list flags from the environment as CSV: quote the pair so its comma stays inside.
    env["RCLONE_AUTH_KEY"] = f'"{key_id},{secret}"'
    # The server's own log goes to a file: it is not the demo's output.
    with open(log_file, "ab") as log_out:
        proc = subprocess.Popen(
            [binary, "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--log-level", "NOTICE"],
            env=env, stdin=subprocess.DEVNULL, stdout=log_out, stderr=log_out, start_new_session=True,
        )
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"rclone serve s3 exited with code {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("rclone serve s3 did not start")


def run_demo(base: Path, port: int) -> int:
    base = base.resolve()
    bucket_root = base / "bucket"
    (bucket_root / "notebooks").mkdir(parents=True, exist_ok=True)
    key_id, secret = "demo", secrets.token_hex(16)
    s3_port = free_port()
    env = dict(os.environ)
    env.update({
        "AWS_S3_BUCKET_FOLDER": "notebooks/demo",
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "RCLONE_JUPYTER_DATA_DIR": str(base / "data"),
        "RCLONE_JUPYTER_STATE_DIR": str(base / "state"),
        "JUPYTERLAB_PORT": str(port),
    })
    env.setdefault("RCLONE_JUPYTER_EXAMPLES_DIR", str(Path(__file__).resolve().parent.parent / "examples"))
    settings = settings_mod.load(env)
    logs.configure(settings.log_level)
    server = serve_s3(find_binary(), bucket_root, s3_port, key_id, secret, base / "s3-server.log")
    log.info("demo: a local S3 server on 127.0.0.1:%d serves %s; your files land in %s",
             s3_port, bucket_root, bucket_root / "notebooks" / "demo")
    log.info("demo: open http://localhost:%d (password: data); press Ctrl-C to stop", port)
    log.info("demo: sync state from another terminal: RCLONE_JUPYTER_STATE_DIR=%s rclone-jupyter status",
             base / "state")
    try:
        return Supervisor(settings, env=env, image="demo (local S3 server)").run()
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
