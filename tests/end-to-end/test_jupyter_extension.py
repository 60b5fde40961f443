"""The server extension in the JupyterLab that a real `rclone-jupyter start` runs: its routes, their login and
XSRF checks, no secret in any answer, and the state dir it finds when `start` defaulted it."""

from __future__ import annotations

import json

import pytest
import requests

from conftest import one_s3_server, Bucket, wait_until
from test_jupyter import login



@pytest.fixture
def s3(tmp_path_factory):
    """JupyterLab's side is tested here, not the storage's: one S3 server is enough (conftest.one_s3_server)."""
    yield from one_s3_server(tmp_path_factory)

pytestmark = pytest.mark.slow

STATUS = "/rclone-jupyter/api/status"
SYNC = "/rclone-jupyter/api/sync"


def jupyter_ready(daemon) -> str:
    base = f"http://127.0.0.1:{daemon.port}"
    wait_until(lambda: requests.get(f"{base}/api", timeout=5).ok, timeout=60, message="JupyterLab answers")
    return base


def without_defaults(daemon, state_dir):
    """Let `start` default its state dir (as the images do): under the daemon's HOME."""
    daemon.env.pop("RCLONE_JUPYTER_STATE_DIR")
    daemon.env.pop("XDG_STATE_HOME", None)
    daemon.state = state_dir
    return daemon


def test_status_and_sync_need_the_login_and_the_xsrf_token_and_tell_no_secret(s3, daemons):
    daemon = daemons({**s3.env(), "JUPYTERLAB_PW": "ext-Pw-5521"}, jupyter=True).start()
    base = jupyter_ready(daemon)
    answers: list[str] = []

    # No login: refused, and nothing was synced on the way.
    assert requests.get(base + STATUS, timeout=10).status_code == 403
    assert requests.post(base + SYNC, timeout=10).status_code == 403

    session, code = login(base, "ext-Pw-5521")
    assert code == 302
    daemon.wait_synced()
    status = session.get(base + STATUS, timeout=10)
    assert status.status_code == 200 and status.headers["Content-Type"].startswith("application/json")
    answers.append(status.text)
    # The same JSON as `rclone-jupyter status --json` (only the write time may differ between two reads).
    cli = daemon.cli("status", "--json")
    assert cli.returncode == 0, cli.stderr
    expected, got = json.loads(cli.stdout), status.json()
    for data in (expected, got):
        data.pop("updated", None)
    assert got == expected
    assert got["running"] is True and got["persistent"] is True and got["phase"] == "running"
    (remote,) = got["remotes"].values()
    assert remote["display"].startswith("s3://bucket/team/alice")

    # A POST without the XSRF token is refused, even logged in.
    assert session.post(base + SYNC, timeout=10).status_code == 403

    # "Save now": what `sync --once` does; a file written with the daemon told to wait 60 s lands now.
    (daemon.data / "now.txt").write_text("saved by the button")
    xsrf = {"X-XSRFToken": session.cookies.get("_xsrf")}
    answer = session.post(base + SYNC, headers=xsrf, timeout=60)
    answers.append(answer.text)
    assert answer.status_code == 200 and answer.json() == {"ok": True, "error": None}
    assert Bucket(daemon.tmp, s3.env()).files()["now.txt"] == b"saved by the button"

    # The bucket gone: the sync says so, with the reason, and the status shows the error.
    s3.stop()
    (daemon.data / "later.txt").write_text("cannot land yet")
    answer = session.post(base + SYNC, headers=xsrf, timeout=120)
    answers.append(answer.text)
    assert answer.status_code == 200 and answer.json()["ok"] is False and answer.json()["error"]
    failing = session.get(base + STATUS, timeout=10)
    answers.append(failing.text)
    assert failing.json()["last_error"] and failing.json()["pending"] >= 1
    s3.start()

    for text in answers:
        for secret in s3.secrets() + ["ext-Pw-5521"]:
            assert secret not in text


def test_status_answers_every_poll(s3, daemons):
    # The status item polls this route: every poll is answered, from the daemon's control channel. How fast is a
    # figure for bench/, not a test's assert (a busy 2-core machine makes any bound flaky).
    daemon = daemons(s3.env(), jupyter=True).start()
    base = jupyter_ready(daemon)
    session, _ = login(base, "data")
    for _ in range(30):
        answer = session.get(base + STATUS, timeout=10)
        assert answer.status_code == 200
        assert answer.json()["running"] is True


def test_without_a_bucket_the_status_says_not_persisted_and_sync_refuses(daemons, tmp_path):
    daemon = daemons({}, jupyter=True, name="alone")
    without_defaults(daemon, daemon.home / ".local/state/rclone-jupyter").start()
    base = jupyter_ready(daemon)
    session, _ = login(base, "data")
    # The extension found the defaulted state dir: `start` passed it to JupyterLab, absolute.
    environ = open(f"/proc/{daemon.status()['jupyter']['pid']}/environ", "rb").read().split(b"\0")
    assert f"RCLONE_JUPYTER_STATE_DIR={daemon.state}".encode() in environ
    status = session.get(base + STATUS, timeout=10).json()
    assert status["persistent"] is False and status["running"] is True
    answer = session.post(base + SYNC, headers={"X-XSRFToken": session.cookies.get("_xsrf")}, timeout=10)
    assert answer.status_code == 409
    assert answer.json() == {"ok": False, "error": "no bucket is configured: there is nothing to save to"}
