"""JupyterLab as `start` launches it: login required, the password works, IPv4 and IPv6, no secret in argv."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from conftest import one_s3_server, settled, wait_until



@pytest.fixture
def s3(tmp_path_factory):
    """JupyterLab's side is tested here, not the storage's: one S3 server is enough (conftest.one_s3_server)."""
    yield from one_s3_server(tmp_path_factory)

pytestmark = pytest.mark.slow


def login(base: str, password: str) -> tuple[requests.Session, int]:
    session = requests.Session()
    session.get(f"{base}/login", timeout=10)
    xsrf = session.cookies.get("_xsrf")
    response = session.post(f"{base}/login", data={"password": password, "_xsrf": xsrf},
                            allow_redirects=False, timeout=10)
    return session, response.status_code


def check_auth(base: str, password: str) -> None:
    assert requests.get(f"{base}/api/contents", timeout=10).status_code == 403
    _, code = login(base, "wrong-password")
    assert code == 401
    session, code = login(base, password)
    assert code == 302
    listing = session.get(f"{base}/api/contents", timeout=10)
    assert listing.status_code == 200
    assert "welcome.txt" in {item["name"] for item in listing.json()["content"]}


@pytest.mark.parametrize("password", [None, "C0rrect-Horse-Battery"])
def test_jupyterlab_requires_the_password_over_ipv4_and_ipv6(s3, daemons, password):
    env = dict(s3.env())
    if password:
        env["JUPYTERLAB_PW"] = password
    daemon = daemons(env, jupyter=True).start()
    expected = password or "data"
    wait_until(lambda: requests.get(f"http://127.0.0.1:{daemon.port}/api", timeout=5).ok, timeout=60,
               message="JupyterLab answers")
    check_auth(f"http://127.0.0.1:{daemon.port}", expected)
    check_auth(f"http://[::1]:{daemon.port}", expected)
    health = daemon.cli("health")
    assert health.returncode == 0, health.stderr

    # A notebook saved through JupyterLab's API lands in the bucket; a delete through the API removes it.
    session, _ = login(f"http://127.0.0.1:{daemon.port}", expected)
    xsrf = {"X-XSRFToken": session.cookies.get("_xsrf")}
    body = {"type": "notebook", "format": "json",
            "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
    assert session.put(f"http://127.0.0.1:{daemon.port}/api/contents/saved.ipynb", json=body, headers=xsrf,
                       timeout=10).status_code in (200, 201)
    from conftest import Bucket

    bucket = Bucket(daemon.tmp, s3.env())
    settled(lambda: "saved.ipynb" in bucket.files(), message="the notebook in the bucket")

    # Nothing secret on any command line of ours (the password hash lives in a private config file).
    pid = daemon.status()["jupyter"]["pid"]
    argv = open(f"/proc/{pid}/cmdline", "rb").read().decode()
    assert "hashed_password" not in argv and "argon2" not in argv and f"={expected}" not in argv
    config = daemon.state / "jupyter_server_config.json"
    assert config.stat().st_mode & 0o777 == 0o600
    import json

    saved = json.loads(config.read_text())
    assert saved["PasswordIdentityProvider"]["hashed_password"].startswith("argon2:")  # only the hash
    assert f'"{expected}"' not in config.read_text()

    assert session.delete(f"http://127.0.0.1:{daemon.port}/api/contents/saved.ipynb", headers=xsrf,
                          timeout=10).status_code == 204
    settled(lambda: "saved.ipynb" not in bucket.files(), message="the delete in the bucket")

    assert daemon.stop(signal.SIGTERM) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # JupyterLab was stopped with us


def test_jupyterlab_exiting_on_its_own_flushes_and_passes_its_code(s3, daemons):
    from conftest import Bucket

    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": "30", "RCLONE_JUPYTER_MAX_DELAY": "60"},
                     jupyter=True).start()
    (daemon.data / "late.txt").write_text("written just before JupyterLab died")
    pid = daemon.status()["jupyter"]["pid"]
    os.kill(pid, signal.SIGKILL)
    code = daemon.proc.wait(timeout=60)
    assert code == -signal.SIGKILL or code != 0
    assert Bucket(daemon.tmp, s3.env()).files() == {"late.txt": b"written just before JupyterLab died"}


def test_jupyterlab_does_not_outlive_a_daemon_killed_with_sigkill(s3, daemons):
    daemon = daemons(s3.env(), jupyter=True).start()
    pid = daemon.status()["jupyter"]["pid"]
    daemon.kill()  # no shutdown at all: outside a container nothing else would stop JupyterLab

    def gone() -> bool:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state == "Z"

    wait_until(gone, timeout=10, message="JupyterLab to die with its daemon")
