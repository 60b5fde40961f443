"""Real servers and a real `rclone-jupyter start` for the tests. Everything binds 127.0.0.1 and is stopped."""

from __future__ import annotations

import atexit
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
RCLONE = str(VENV_BIN / "rclone")
CLI = str(VENV_BIN / "rclone-jupyter")
MOTO_SERVER = Path(__file__).with_name("moto_server.py")  # moto_server, without a per-request cost

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


def stop_process(proc: subprocess.Popen | None) -> None:
    """Terminate a server we started, then kill it if it does not stop within 5 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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

    kind = "rclone-serve-s3"
    checks_signatures = True
    # The server's Last-Modified is the time rclone gave the file (not the upload time, as on AWS).
    server_time_is_file_time = True
    holds_line_breaks_in_names = True

    def __init__(self, root: Path, bucket: str = "bucket"):
        self.root = root
        self.bucket = bucket
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.key_id, self.secret = S3_KEY_ID, S3_SECRET
        self.proc: subprocess.Popen | None = None

    def make_bucket(self, name: str) -> None:
        """Through S3 (a PUT of the bucket), not as a folder: a running server caches its folders' listings."""
        if self.proc is None or self.proc.poll() is not None:
            (self.root / name).mkdir(parents=True, exist_ok=True)  # seen when the server starts
            return
        env = clean_env(RCLONE_CONFIG=os.devnull, RCLONE_CONFIG_MAKER_TYPE="s3", RCLONE_CONFIG_MAKER_PROVIDER="Other",
                        RCLONE_CONFIG_MAKER_ENDPOINT=self.endpoint, RCLONE_CONFIG_MAKER_ACCESS_KEY_ID=self.key_id,
                        RCLONE_CONFIG_MAKER_SECRET_ACCESS_KEY=self.secret)
        subprocess.run([RCLONE, "mkdir", f"maker:{name}"], env=env, check=True, capture_output=True, timeout=60)

    def new_bucket(self) -> None:
        """The next test's own bucket (SharedServers): the last test's bucket is removed first."""
        shutil.rmtree(self.root / self.bucket, ignore_errors=True)
        self.bucket = _fresh_bucket_name()
        self.make_bucket(self.bucket)

    def healthy(self) -> bool:
        """Running, not frozen, and with the key it was started with: fit for the next test."""
        return _running(self.proc) and self.secret == S3_SECRET

    def down(self) -> None:
        """The server goes away (a stop); its objects stay in its folder for up()."""
        self.stop()

    def up(self) -> None:
        self.start()

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
        stop_process(self.proc)

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
    kind = "external"

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


class TcpGate:
    """A TCP forwarder 127.0.0.1:port -> 127.0.0.1:upstream that can go down and come back on the same port.

    Down means what a stopped server means to a client: open connections are reset and new ones refused.
    The upstream connection is made from the client's own loopback address, so a server's log still shows
    who asked (the tests' own probes connect from PROBE_ADDRESS).
    """

    def __init__(self, port: int, upstream: int):
        self.port, self.upstream = port, upstream
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="tcp-gate", daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() up
            listener.close()
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.shutdown(socket.SHUT_RD)  # wakes its pipe's recv() up without sending anything
                sock.close()  # linger 0: a reset, as from a dead server
            except OSError:
                pass

    def is_up(self) -> bool:
        return self._listener is not None

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, (address, _port) = listener.accept()
            except OSError:
                return
            try:
                server = socket.socket()
                server.bind((address, 0))
                server.connect(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, server}
            threading.Thread(target=self._serve, args=(client, server), name="tcp-gate-conn", daemon=True).start()

    def _serve(self, client: socket.socket, server: socket.socket) -> None:
        back = threading.Thread(target=self._pipe, args=(server, client), daemon=True)
        back.start()
        self._pipe(client, server)
        back.join()
        with self._lock:
            self._sockets -= {client, server}
        client.close()
        server.close()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(1 << 16):
                sink.sendall(data)
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            for sock in (source, sink):  # one side is gone: so is the other
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


PROBE_ADDRESS = "127.0.0.2"  # the tests' own requests to moto come from here, the daemons' from 127.0.0.1


class MotoS3:
    """moto's S3 server (`moto_server`), the AWS-like one: Last-Modified is the upload time, the ETag the MD5.

    It keeps objects in memory and ignores credentials (any key is accepted). It runs behind a TcpGate, so
    `down()`/`up()` is an outage that keeps the data (a restart of moto would lose it). It logs one line per
    request: `mark()`, then `counts()` gives the requests made since, by kind (see moto_log.py).
    """

    kind = "moto"
    checks_signatures = False  # a wrong secret is accepted: credential tests cannot run here
    server_time_is_file_time = False  # Last-Modified is the upload time, as on AWS
    holds_line_breaks_in_names = False  # moto 5.2 answers a PUT of such a key with a broken 404 (AWS takes it)

    def __init__(self, root: Path, bucket: str = "bucket"):
        self.root = root
        self.bucket = bucket
        self.port = free_port()
        self.moto_port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.key_id, self.secret = S3_KEY_ID, S3_SECRET
        self.log_path = root / "moto.log"
        self.proc: subprocess.Popen | None = None
        self.gate = TcpGate(self.port, self.moto_port)
        self._mark = 0
        self.server_env: dict[str, str] = {}  # moto's own settings (a subclass's, e.g. IAM enforcement)

    def start(self) -> "MotoS3":
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.moto_port)],
                env=clean_env(PYTHONUNBUFFERED="1", **self.server_env), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_port(self.moto_port, timeout=30)
        self.gate.up()
        self.make_bucket(self.bucket)
        return self

    def stop(self) -> None:
        self.gate.down()
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a test may have frozen it
        stop_process(self.proc)

    def down(self) -> None:
        """The server goes away (connections reset, new ones refused); its objects are kept."""
        self.gate.down()

    def up(self) -> None:
        self.gate.up()

    def make_bucket(self, name: str) -> None:
        status = self._moto_request("PUT", f"/{urllib.parse.quote(name)}")
        assert status == 200, (status, name)

    def _moto_request(self, method: str, path: str) -> int:
        """One request straight to moto (not through the gate), from the tests' own address."""
        import http.client

        conn = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=10,
                                          source_address=(PROBE_ADDRESS, 0))
        try:
            conn.request(method, path)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def new_bucket(self) -> None:
        """The next test's own bucket (SharedServers): moto forgets every earlier one (and frees their memory)."""
        self._moto_request("POST", "/moto-api/reset")
        self.bucket = _fresh_bucket_name()
        self.make_bucket(self.bucket)

    def healthy(self) -> bool:
        """Running, not frozen, its gate open: fit for the next test."""
        return _running(self.proc) and self.gate.is_up()

    def mark(self) -> None:
        """Counting starts here: counts() sees only the requests logged after this call."""
        self._mark = self.log_path.stat().st_size

    def requests(self):
        """The requests logged since mark() (moto_log.Request), the tests' own probes included."""
        from moto_log import parse

        with open(self.log_path, "rb") as log:
            log.seek(self._mark)
            return parse(log.read().decode(errors="replace"))

    def counts(self, client: str = "127.0.0.1"):
        """{kind: number} of the requests since mark() from `client` (by default not the tests' probes) to this
        test's bucket: the server is shared by the tests of this worker, and only this test's requests count."""
        from moto_log import count

        mine = f"/{self.bucket}"
        return count([r for r in self.requests() if r.path == mine or r.path.startswith(mine + "/")], client=client)

    env = S3Server.env
    secrets = S3Server.secrets


_bucket_names = itertools.count(1)


def _fresh_bucket_name() -> str:
    return f"bucket-{next(_bucket_names):04d}"


def _running(proc: subprocess.Popen | None) -> bool:
    """The process runs and is not stopped (a test may have frozen it with SIGSTOP)."""
    if proc is None or proc.poll() is not None:
        return False
    try:
        return Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t")
    except (OSError, IndexError):
        return False


class SharedServers:
    """The S3 servers of this test process (one per pytest-xdist worker), started on first use.

    Each test gets the running server with a bucket of its own (new_bucket). A test that leaves the server
    down, frozen or re-keyed retires it: the next test gets a fresh one. Tests that take the server down on
    purpose ask for a private one (the `private_s3` marker).
    """

    KINDS = {"serve": S3Server, "moto": MotoS3}

    def __init__(self):
        self.factory: pytest.TempPathFactory | None = None
        self._servers: dict[str, S3Server | MotoS3] = {}

    def get(self, kind: str) -> S3Server | MotoS3:
        server = self._servers.get(kind)
        if server is not None and not server.healthy():
            self.retire(server)
            server = None
        if server is None:
            assert self.factory is not None, "SharedServers used outside a pytest session"
            server = self.KINDS[kind](self.factory.mktemp(f"shared-{kind}")).start()
            self._servers[kind] = server
        server.new_bucket()
        return server

    def release(self, server: S3Server | MotoS3) -> None:
        """The test is over: keep the server for the next one, unless the test left it unfit."""
        if not server.healthy():
            self.retire(server)

    def retire(self, server: S3Server | MotoS3) -> None:
        server.stop()
        self._servers = {kind: s for kind, s in self._servers.items() if s is not server}

    def close(self) -> None:
        for server in list(self._servers.values()):
            self.retire(server)


SERVERS = SharedServers()


@pytest.fixture(scope="session", autouse=True)
def _shared_servers(tmp_path_factory):
    """Stops this process's shared servers at the end of the session."""
    SERVERS.factory = tmp_path_factory
    yield SERVERS
    SERVERS.close()


def one_s3_server(tmp_path_factory):
    """One S3 server (`rclone serve s3`, or RJ_TEST_S3_ENDPOINT's), for a module to use as its `s3` fixture
    where the storage is not what is tested (JupyterLab's login, its extension, the browser)."""
    server = ExternalS3() if os.environ.get("RJ_TEST_S3_ENDPOINT") else S3Server(tmp_path_factory.mktemp("s3root"))
    server.start()  # its own (0.1 s): these tests stop and start it, and name its bucket
    yield server
    server.stop()


@pytest.fixture(params=["serve", "moto"], ids=["rclone-serve-s3", "moto"])
def s3(request, tmp_path_factory):
    """An S3 server for one test: `rclone serve s3` (checks SigV4, keeps rclone's mtime as the file time) and
    moto (AWS-like times and ETags, request log). With RJ_TEST_S3_ENDPOINT set: that server, once.

    The server is this process's shared one, with a bucket of its own for this test; a test marked
    `private_s3` (it takes the server down, freezes or re-keys it) gets a server of its own."""
    if os.environ.get("RJ_TEST_S3_ENDPOINT"):
        if request.param != "serve":
            pytest.skip("RJ_TEST_S3_ENDPOINT is set: the S3 tests run once, against that server")
        server = ExternalS3().start()
        yield server
        server.stop()
    elif request.node.get_closest_marker("private_s3"):
        root = tmp_path_factory.mktemp("s3root" if request.param == "serve" else "moto")
        server = SharedServers.KINDS[request.param](root).start()
        yield server
        server.stop()
    else:
        server = SERVERS.get(request.param)
        yield server
        SERVERS.release(server)


@pytest.fixture
def moto():
    """moto's server alone (shared, a bucket of its own), for tests about AWS-like behaviour and request counts."""
    server = SERVERS.get("moto")
    yield server
    SERVERS.release(server)


def needs(server, capability: str, reason: str) -> None:
    """Skip this parametrization when `server` lacks `capability` (e.g. 'checks_signatures'), saying why."""
    if not getattr(server, capability, True):
        pytest.skip(f"{server.kind}: {reason}")


class TestRcd:
    """One `rclone rcd` for a Bucket's reads and writes: an rc call each instead of an rclone start each (the
    suite's own looks at its buckets were 1,300 rclone starts, a sixth of its CPU). Started on first use, on a
    free port of 127.0.0.1; every one a test started is stopped at its end (stop_test_rcds)."""

    started: list[TestRcd] = []

    @staticmethod
    def stop_all() -> None:
        while TestRcd.started:
            TestRcd.started.pop().stop()

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.proc = subprocess.Popen([RCLONE, "rcd", "--rc-addr", f"127.0.0.1:{self.port}", "--rc-no-auth"],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        TestRcd.started.append(self)
        wait_port(self.port, timeout=30)

    def call(self, method: str, **params) -> dict:
        """One rc call; an error answer raises RcloneCallError with rclone's message."""
        import requests

        response = requests.post(f"http://127.0.0.1:{self.port}/{method}", json=params, timeout=120)
        answer = response.json()
        if response.status_code != 200:
            raise RcloneCallError(answer.get("error") or f"HTTP {response.status_code}")
        return answer

    def stop(self) -> None:
        stop_process(self.proc)


class RcloneCallError(AssertionError):
    pass


@pytest.fixture(autouse=True)
def stop_test_rcds():
    yield
    TestRcd.stop_all()


atexit.register(TestRcd.stop_all)  # a Bucket used outside a test (a session fixture, a script) leaves none either


def _not_there(exc: RcloneCallError) -> bool:
    return "directory not found" in str(exc)


class Bucket:
    """Reads and writes a bucket folder through real rclone, with its own private config (as a user would)."""

    def __init__(self, tmp: Path, env: dict[str, str]):
        from rclone_jupyter.config import settings as settings_mod
        from rclone_jupyter.config.remotes import render_config

        self.settings = settings_mod.load(clean_env(RCLONE_JUPYTER_STATE_DIR=str(tmp / "probe-state"), **env))
        self.remote = self.settings.remotes[0]
        self.config = tmp / "probe-rclone.conf"
        self.config.write_text(render_config((self.remote,)))
        self.config.chmod(0o600)
        self.tmp = tmp
        # To a local S3 server, the probe connects from its own address: moto's request log then tells the
        # daemon's requests (127.0.0.1) from the test's (MotoS3.counts()).
        local_s3 = env.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1:")
        self.bind = PROBE_ADDRESS if local_s3 else None
        self._rcd: TestRcd | None = None

    def _env(self) -> dict[str, str]:
        return clean_env(RCLONE_CONFIG=str(self.config), **({"RCLONE_BIND": self.bind} if self.bind else {}))

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([RCLONE, *args], env=self._env(), capture_output=True, text=True, check=check,
                              timeout=120)

    def _rc(self, method: str, **params) -> dict:
        if self._rcd is None or self._rcd.proc.poll() is not None:
            self._rcd = TestRcd(self._env())
        return self._rcd.call(method, **params)

    def files(self) -> dict[str, bytes]:
        """Every object under the bucket folder: {relative path: content}.

        The running orchestrators' heartbeats (`.rclone-jupyter/`, never synced) are left out: see nodes().
        """
        return self._snapshot(state=False)

    def nodes(self) -> dict[str, bytes]:
        """The heartbeat objects of the orchestrators on this bucket folder: {name: content}."""
        prefix = ".rclone-jupyter/nodes/"
        return {k[len(prefix):]: v for k, v in self._snapshot().items() if k.startswith(prefix)}

    def _snapshot(self, state: bool = True) -> dict[str, bytes]:
        """{name: content} of the bucket folder's objects; `state=False`: without `.rclone-jupyter/` (the
        heartbeats, the manifest and the trash), which is then not even downloaded."""
        # Three tries, as `rclone copy` makes by default (--retries 3): an object the daemon deletes while it is
        # copied fails one.
        for attempt in itertools.count(1):
            dest = self.tmp / f"snapshot-{time.monotonic_ns()}"
            dest.mkdir()
            try:
                self._rc("sync/copy", srcFs=self.remote.path(), dstFs=str(dest),
                         **({} if state else {"_filter": {"ExcludeRule": ["/.rclone-jupyter/**"]}}))
            except RcloneCallError as exc:
                if not _not_there(exc):  # a missing folder is an empty one; anything else is tried again
                    if attempt < 3:
                        continue
                    raise
            return tree(dest)

    def names(self) -> set[str]:
        """The relative paths of the bucket folder's files, without `.rclone-jupyter/`: one listing, no download
        (a wait on a count of many files would otherwise download them all at every look)."""
        try:
            answer = self._rc("operations/list", fs=self.remote.path(), remote="",
                              opt={"recurse": True, "filesOnly": True, "noModTime": True, "noMimeType": True},
                              _filter={"ExcludeRule": ["/.rclone-jupyter/**"]})
        except RcloneCallError as exc:
            if not _not_there(exc):
                raise
            return set()
        return {entry["Path"] for entry in answer.get("list") or []}

    def put(self, rel: str, content: bytes, mtime: float | None = None) -> None:
        src = self.tmp / f"put-{time.monotonic_ns()}"
        src.write_bytes(content)
        if mtime is not None:
            os.utime(src, (mtime, mtime))
        self._rc("operations/copyfile", srcFs=str(self.tmp), srcRemote=src.name, dstFs=self.remote.path(),
                 dstRemote=rel)

    def put_tree(self, folder: Path) -> None:
        """Upload every file below `folder` (its relative paths become the objects' names): one rclone run,
        for seeds of thousands of objects."""
        self._run("copy", str(folder), self.remote.path(), "--transfers", "32", "--s3-no-head")

    def delete(self, rel: str) -> None:
        self._rc("operations/deletefile", fs=self.remote.path(), remote=rel)


def make_engine(env: dict[str, str], tmp_path: Path):
    """An Engine exactly as `rclone-jupyter start` builds it, with its own data and state folders."""
    from rclone_jupyter.config import settings as settings_mod
    from rclone_jupyter.daemon.supervisor import make_engines, prepare

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
            try:
                out[full.relative_to(root).as_posix()] = full.read_bytes()
            except FileNotFoundError:  # deleted (by the daemon, as a wait_until awaits) since the folder was read
                continue
    return out


def synced_tree(root: Path) -> dict[str, bytes]:
    """tree() without what is never synced (welcome.txt, checkpoints, temp files)."""
    from rclone_jupyter.model.filters import is_noise

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


def _nothing_pending(status_text: str) -> bool:
    try:
        return json.loads(status_text).get("pending") == 0
    except ValueError:
        return False


def settled(predicate, timeout: float = 20.0, interval: float = 0.05, message: str = "condition", every: float = 2.0):
    """wait_until() for a costly predicate (a copy of the bucket is an rclone run): it is evaluated when the
    test's daemons report nothing pending in a status they had not shown yet, at least every `every` s, and
    once more at the deadline. Between, only their status files are read (every `interval` s).

    A status changes when a change is noted and when a push or reconcile ends, so a bucket the daemons
    write to cannot reach the expected state unseen; `every` covers what changes it otherwise.
    """
    deadline = time.monotonic() + timeout
    seen: list[str] | None = None
    checked = -float("inf")
    while True:
        now = time.monotonic()
        texts = [daemon.status_text() for daemon in Daemon.of_this_test]
        idle = all(_nothing_pending(text) for text in texts)
        if (idle and texts != seen) or now - checked >= every or now >= deadline:
            seen, checked = texts, now
            last = predicate()
            if last:
                return last
            if now >= deadline:
                raise AssertionError(f"timed out after {timeout:g} s waiting for {message} (last: {last!r})")
        time.sleep(interval)


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
        except subprocess.TimeoutExpired:
            # Still running: ask it for every thread's stack (`start` dumps them on SIGQUIT), so the failure
            # says where it hung, then make sure it is gone.
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            raise AssertionError(f"{self.proc.args[1:]} did not stop within {timeout:g} s after signal {sig}; "
                                 f"its log ends:\n{self.log()[-6000:]}") from None
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

    of_this_test: list["Daemon"] = []  # made by the `daemons` fixture of the running test (settled() reads them)

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
            return json.loads(self.status_text())
        except ValueError:
            return None

    def status_text(self) -> str:
        try:
            return (self.state / "status.json").read_text()
        except FileNotFoundError:
            return ""

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
    Daemon.of_this_test = started

    def make(env: dict[str, str], **kwargs) -> Daemon:
        daemon = Daemon(tmp_path, env, **kwargs)
        started.append(daemon)
        return daemon

    yield make
    Daemon.of_this_test = []
    for daemon in started:
        if daemon.proc is not None and daemon.proc.poll() is None:
            try:
                daemon.stop(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()


@pytest.fixture
def small_disk(tmp_path):
    """Factory: small_disk(name, size) -> a folder on its own tmpfs of that size, unmounted after.

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


# -- what each test costs in CPU (RJ_TEST_CPU_LOG=path: a line per test, appended) -----------------------------
# The suite's wall time on 2 cores is bound by CPU once the workers outnumber the cores: this tells which tests
# spend it, counting this worker, every process it reaped during the test (daemons and their rclones, seeds,
# probes) and the live servers it started (moto, `rclone serve s3`, Azurite), whoever of them did the work.

def _descendant_cpu() -> dict[int, float]:
    """{pid: CPU seconds, with its reaped children} of every live process descending from this one."""
    tick = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        cpu[int(name)] = sum(int(f) for f in fields[11:15]) / tick
    me, mine = os.getpid(), {}
    for pid in cpu:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            mine[pid] = cpu[pid]
    return mine


def _own_cpu() -> float:
    import resource

    own, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + reaped.ru_utime + reaped.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    path = os.environ.get("RJ_TEST_CPU_LOG")
    if not path:
        yield
        return
    before, live, started = _own_cpu(), _descendant_cpu(), time.monotonic()
    yield
    after, now = _own_cpu(), _descendant_cpu()
    # A process alive before that ended during the test (a retired server) was reaped with its whole life's CPU.
    spent = (after - before + sum(cpu - live.get(pid, 0.0) for pid, cpu in now.items())
             - sum(cpu for pid, cpu in live.items() if pid not in now))
    with open(path, "a") as log:
        log.write(f"{spent:.2f}\t{time.monotonic() - started:.2f}\t{item.nodeid}\n")


# The modules whose tests wait longest (throttled links, retry backoffs, a browser; RJ_TEST_CPU_LOG's wall
# column), longest first. They are collected first, so the parallel run does not end with one worker still
# inside one of them while the others are idle. Order only: a module missing here runs after them.
LONG_FIRST = ("test_labextension_browser.py", "test_start_link.py", "test_undo.py", "test_link.py",
              "test_hostile_bucket.py", "test_jupyterlab_state.py", "test_sync_once_race.py", "test_requests.py",
              "test_faults.py", "test_outage.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
