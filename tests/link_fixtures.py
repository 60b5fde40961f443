"""An S3 server behind a residential link (tests/throttle.py), and probes that look at the bucket without it.

The daemon under test talks to the server through the link (`AWS_ENDPOINT_URL` is the proxy); the test's own
probes go straight to the server, so they neither use the link's bandwidth nor show up in its byte counters.
"""

from __future__ import annotations

import json
import os

import pytest

from conftest import Bucket, MotoS3, S3Server
from throttle import MiB, ThrottledLink

# Slower than the 2 MiB/s with smaller files: the same behaviour in half the time.
UP = 1 * MiB
DOWN = 8 * MiB


class SlowS3:
    """A server, the link in front of it, and a probe of the bucket folder that bypasses the link."""

    def __init__(self, server, link: ThrottledLink, tmp):
        self.server = server
        self.link = link
        self.kind = server.kind
        self.probe = Bucket(tmp, server.env())

    def env(self, folder: str = "team/alice") -> dict[str, str]:
        """The daemon's variables: the bucket folder, reached through the link."""
        return {**self.server.env(folder), "AWS_ENDPOINT_URL": self.link.url}

    def sizes(self) -> dict[str, int]:
        """{name: size} of every object in the bucket folder now (one listing, straight to the server)."""
        result = self.probe._run("lsjson", "-R", "--files-only", "--no-mimetype", self.probe.remote.path(),
                                 check=False)
        if result.returncode == 3:  # the folder does not exist yet
            return {}
        assert result.returncode == 0, result.stderr
        return {e["Path"]: e["Size"] for e in json.loads(result.stdout or "[]")
                if not e["Path"].startswith(".rclone-jupyter/")}

    def cat(self, rel: str) -> bytes:
        """An object's bytes (binary-safe)."""
        import subprocess

        from conftest import RCLONE, clean_env

        env = clean_env(RCLONE_CONFIG=str(self.probe.config),
                        **({"RCLONE_BIND": self.probe.bind} if self.probe.bind else {}))
        return subprocess.run([RCLONE, "cat", self.probe.remote.path(rel)], env=env, capture_output=True,
                              check=True, timeout=120).stdout

    def multipart_uploads(self) -> list[dict]:
        """The bucket's unfinished multipart uploads (moto lists them; `rclone serve s3` cannot)."""
        bucket = self.probe.remote.path().split(":", 1)[1].split("/", 1)[0]
        result = self.probe._run("backend", "list-multipart-uploads", f"{self.probe.remote.name}:{bucket}")
        return json.loads(result.stdout).get(bucket) or []


@pytest.fixture(params=["serve", "moto"], ids=["rclone-serve-s3", "moto"])
def slow_s3(request, tmp_path_factory):
    """`rclone serve s3` and moto, each behind a 1 MiB/s up, 8 MiB/s down link."""
    if os.environ.get("RJ_TEST_S3_ENDPOINT"):
        pytest.skip("the link tests put a local proxy in front of a local server")
    root = tmp_path_factory.mktemp("slow-s3")
    server = S3Server(root / "s3") if request.param == "serve" else MotoS3(root / "moto")
    server.start()
    # In front of moto's gate (MotoS3.port), so the server can still be taken down and brought back.
    link = ThrottledLink(server.port, up=UP, down=DOWN).start()
    try:
        yield SlowS3(server, link, root)
    finally:
        link.stop()
        server.stop()


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def save_atomically(path, content: bytes) -> None:
    """Write a file as Jupyter (and most checkpoint writers) do: a temporary file renamed into place."""
    tmp = path.with_name(f".~{path.name}")
    tmp.write_bytes(content)
    os.replace(tmp, path)


__all__ = ["MiB", "SlowS3", "slow_s3", "random_bytes", "save_atomically", "UP", "DOWN"]
