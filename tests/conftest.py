"""Real servers and a real `rclone-jupyter start` for the tests. Everything binds 127.0.0.1 and is stopped."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RCLONE = str(VENV_BIN / "rclone")
CLI = str(VENV_BIN / "rclone-jupyter")

# Long and unusual, so a leak is found by a plain substring search of logs and argv.
S3_KEY_ID = "rjtestkeyid7c1f"
S3_SECRET = "rjTestSecret-5e9a7Q2z9LmP0xWv"


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A free port outside the kernel's ephemeral range.

    A port from bind(0) is an ephemeral one: until the server binds it (JupyterLab takes seconds), any
    outgoing connection on the machine (rclone's, or other test runs') may get it as its local port, and
    the server fails with "port already in use". Ports below the ephemeral range are never handed out so.
    """
    low, _high = _ephemeral_range()
    for _ in range(200):
        port = random.randint(max(1024, low - 12_000), low - 1)
        try:
            for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
                with socket.socket(family) as sock:
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port found below the ephemeral port range")


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port}")


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without any cloud or rclone-jupyter variable, plus `extra`."""
    prefixes = ("AWS_", "AZURE_", "GOOGLE_", "RCLONE_", "JUPYTERLAB_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


class S3Server:
    """`rclone serve s3` over a folder: a real S3 protocol server that checks SigV4 signatures.

    Set RJ_TEST_S3_ENDPOINT, RJ_TEST_S3_KEY_ID, RJ_TEST_S3_SECRET and RJ_TEST_S3_BUCKET to run the same
    tests against another S3 server (a real MinIO, say) instead.
    """

    def __init__(self, root: Path, bucket: str = "bucket"):
        self.root = root
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.key_id, self.secret = S3_KEY_ID, S3_SECRET
        self.proc: subprocess.Popen | None = None

    def start(self) -> "S3Server":
        (self.root / self.bucket).mkdir(parents=True, exist_ok=True)
        env = clean_env(RCLONE_CONFIG=os.devnull, RCLONE_AUTH_KEY=f'"{self.key_id},{self.secret}"')
        self.proc = subprocess.Popen(
            [RCLONE, "serve", "s3", str(self.root), "--addr", f"127.0.0.1:{self.port}", "--log-level", "ERROR"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def env(self, folder: str = "team/alice") -> dict[str, str]:
        return {
            "AWS_S3_BUCKET_FOLDER": f"{self.bucket}/{folder}" if folder else self.bucket,
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def secrets(self) -> list[str]:
        return [self.secret]


class ExternalS3(S3Server):
    def __init__(self):
        self.endpoint = os.environ["RJ_TEST_S3_ENDPOINT"]
        self.key_id = os.environ["RJ_TEST_S3_KEY_ID"]
        self.secret = os.environ["RJ_TEST_S3_SECRET"]
        self.bucket = os.environ.get("RJ_TEST_S3_BUCKET", "rclone-jupyter-test")
        self.proc = None

    def start(self):
        return self

    def stop(self) -> None:
        pass


@pytest.fixture
def s3(tmp_path_factory):
    server = ExternalS3() if os.environ.get("RJ_TEST_S3_ENDPOINT") else S3Server(tmp_path_factory.mktemp("s3root"))
    server.start()
    yield server
    server.stop()


class Bucket:
    """Reads and writes a bucket folder through real rclone, with its own private config (as a user would)."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        from rclone_jupyter import settings as settings_mod
        from rclone_jupyter.remotes import render_config

        self.settings = settings_mod.load(clean_env(RCLONE_JUPYTER_STATE_DIR=str(tmp / "probe-state"), **env))
        self.remote = self.settings.remotes[0]
        self.config = tmp / "probe-rclone.conf"
        self.config.write_text(render_config((self.remote,)))
        self.config.chmod(0o600)
        self.tmp = tmp

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = clean_env(RCLONE_CONFIG=str(self.config))
        return subprocess.run([RCLONE, *args], env=env, capture_output=True, text=True, check=check, timeout=120)

    def files(self) -> dict[str, bytes]:
        """Every object under the bucket folder: {relative path: content}.

        The running orchestrators' heartbeats (`.rclone-jupyter/`, never synced) are left out: see nodes().
        """
        return {k: v for k, v in self._snapshot().items() if not k.startswith(".rclone-jupyter/")}

    def nodes(self) -> dict[str, bytes]:
        """The heartbeat objects of the orchestrators on this bucket folder: {name: content}."""
        prefix = ".rclone-jupyter/nodes/"
        return {k[len(prefix):]: v for k, v in self._snapshot().items() if k.startswith(prefix)}

    def _snapshot(self) -> dict[str, bytes]:
        dest = self.tmp / f"snapshot-{time.monotonic_ns()}"
        result = self._run("copy", self.remote.path(), str(dest), check=False)
        if result.returncode not in (0, 3):
            raise AssertionError(result.stderr)
        return tree(dest)

    def put(self, rel: str, content: bytes, mtime: float | None = None) -> None:
        src = self.tmp / f"put-{time.monotonic_ns()}"
        src.write_bytes(content)
        if mtime is not None:
            os.utime(src, (mtime, mtime))
        self._run("copyto", str(src), self.remote.path(rel))

    def delete(self, rel: str) -> None:
        self._run("deletefile", self.remote.path(rel))


def make_engine(env: dict[str, str], tmp_path: Path):
    """An Engine exactly as `rclone-jupyter start` builds it, with its own data and state folders."""
    from rclone_jupyter import settings as settings_mod
    from rclone_jupyter.supervisor import make_engines, prepare

    full = clean_env(RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "data"), RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "st"),
                     **env)
    settings = settings_mod.load(full)
    state, binary = prepare(settings, full)
    return make_engines(settings, state, binary, full)[0]


def tree(root: Path) -> dict[str, bytes]:
    """{relative path: bytes} of every regular file under root (no symlinks followed)."""
    out: dict[str, bytes] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                continue
            out[full.relative_to(root).as_posix()] = full.read_bytes()
    return out


def synced_tree(root: Path) -> dict[str, bytes]:
    """tree() without what is never synced (welcome.txt, checkpoints, temp files)."""
    from rclone_jupyter.filters import is_noise

    return {k: v for k, v in tree(root).items() if not is_noise(k)}


def wait_until(predicate, timeout: float = 20.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {message} (last: {last!r})")


class LoggedProcess:
    """A child process writing to `log_path`: stop it (a signal, then wait), kill it, read its log."""

    proc: subprocess.Popen | None = None
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Daemon(LoggedProcess):
    """A real `rclone-jupyter start` process with its own data dir, state dir, HOME and log file."""

    def __init__(self, tmp: Path, env: dict[str, str], *, jupyter: bool = False, name: str = "node"):
        self.tmp = tmp
        self.data = tmp / f"{name}-data"
        self.state = tmp / f"{name}-state"
        self.home = tmp / f"{name}-home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp / f"{name}.log"
        self.port = free_port()
        self.jupyter = jupyter
        defaults = dict(
            HOME=str(self.home),
            RCLONE_JUPYTER_DATA_DIR=str(self.data),
            RCLONE_JUPYTER_STATE_DIR=str(self.state),
            RCLONE_JUPYTER_QUIET_PERIOD="0.3",
            RCLONE_JUPYTER_MAX_DELAY="2",
            RCLONE_JUPYTER_RETRY_INTERVAL="0.5",
            RCLONE_JUPYTER_FLUSH_DEADLINE="20",
            RCLONE_JUPYTER_RECONCILE_INTERVAL="0",
            RCLONE_JUPYTER_EXAMPLES_DIR="",
            JUPYTERLAB_PORT=str(self.port),
            JUPYTER_CONFIG_DIR=str(self.home / ".jupyter"),
            JUPYTER_DATA_DIR=str(self.home / ".local/share/jupyter"),
            JUPYTER_RUNTIME_DIR=str(self.home / ".local/share/jupyter/runtime"),
        )
        self.env = clean_env(**{**defaults, **env})
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "Daemon":
        args = [CLI, "start"] + ([] if self.jupyter else ["--no-jupyter"])
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        if wait:
            self.wait_running()
        return self

    def wait_running(self, timeout: float = 60.0) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"start exited with {self.proc.returncode}:\n{self.log()}")
            return (self.status() or {}).get("phase") == "running"

        wait_until(ready, timeout, message="phase running")
        if self.jupyter:
            wait_port(self.port, timeout=60)

    def status(self) -> dict | None:
        try:
            return json.loads((self.state / "status.json").read_text())
        except (FileNotFoundError, ValueError):
            return None

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout)

    def wait_synced(self, timeout: float = 30.0) -> dict:
        """Wait until nothing is pending and no error is reported."""

        def done():
            status = self.status() or {}
            return status if status.get("pending") == 0 and not status.get("last_error") else None

        return wait_until(done, timeout, message="pending == 0")

@pytest.fixture
def daemons(tmp_path):
    """Factory of Daemon processes; every one still running at the end is stopped (then killed)."""
    started: list[Daemon] = []

    def make(env: dict[str, str], **kwargs) -> Daemon:
        daemon = Daemon(tmp_path, env, **kwargs)
        started.append(daemon)
        return daemon

    yield make
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            try:
                daemon.stop(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()


@pytest.fixture
def small_disk(tmp_path):
    """Factory: small_disk(name, size) -> a folder on its own tmpfs of that size (TESTING.md), unmounted after.

    Skips with the reason when mounting is refused (not root, or no CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def make(name: str, size: str = "24m") -> Path:
        path = tmp_path / name
        path.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                capture_output=True, text=True)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a {size} tmpfs for a small disk: {result.stderr.strip() or 'mount refused'}")
        mounted.append(path)
        return path

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)
