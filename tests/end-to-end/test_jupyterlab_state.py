"""JupyterLab itself comes back on a new container: its user settings, its workspace (the open tabs) and the
terminal's shell history, kept in a hidden folder of the data folder; no first-run news prompt; nothing else of
HOME is synced. Run against a real `rclone-jupyter start` with JupyterLab, on both S3 servers."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import requests

from conftest import ROOT, Bucket, settled, wait_until
from rclone_jupyter.daemon import user_state

KEPT = user_state.FOLDER
THEMES = "@jupyterlab/apputils-extension:themes"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"
THEMES_FILE = f"{KEPT}/user-settings/@jupyterlab/apputils-extension/themes.jupyterlab-settings"
NOTIFICATION_FILE = f"{KEPT}/user-settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
HISTORY_FILE = f"{KEPT}/bash_history"
NOTEBOOK = {"type": "notebook", "format": "json",
            "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}}
# What JupyterLab's frontend saves when a notebook is open in the main area.
WORKSPACE = {
    "layout-restorer:data": {
        "main": {"dock": {"type": "tab-area", "currentIndex": 0, "widgets": ["notebook:mine.ipynb"]},
                 "current": "notebook:mine.ipynb"},
        "down": {"size": 0, "widgets": []},
        "left": {"collapsed": False, "visible": True, "current": "filebrowser", "widgets": ["filebrowser"]},
        "right": {"collapsed": True, "visible": True, "widgets": []},
        "relativeSizes": [0.2, 0.8, 0], "top": {"simpleVisibility": True},
    },
    "notebook:mine.ipynb": {"data": {"path": "mine.ipynb", "factory": "Notebook"}},
}
# Typed as written; bash prints 42, so the typed echo never matches what a test waits for.
HISTORY_COMMAND = "echo kept-in-history-$((40+2))"


class Lab:
    """A logged-in session with one daemon's JupyterLab, through its own REST API and terminal websocket."""

    def __init__(self, daemon, password: str = "data"):
        self.base = f"http://127.0.0.1:{daemon.port}"
        wait_until(self._answers, timeout=60, message="JupyterLab answers")
        self.session = requests.Session()
        self.session.get(f"{self.base}/login", timeout=10)
        answer = self.session.post(f"{self.base}/login", allow_redirects=False, timeout=10,
                                   data={"password": password, "_xsrf": self.session.cookies.get("_xsrf")})
        assert answer.status_code == 302, answer.status_code
        self.headers = {"X-XSRFToken": self.session.cookies.get("_xsrf")}

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.base}/api", timeout=5).ok
        except requests.ConnectionError:  # listening, not answering yet: JupyterLab is still starting
            return False

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.base}{path}", headers=self.headers, timeout=10)

    def put(self, path: str, body: dict) -> requests.Response:
        return self.session.put(f"{self.base}{path}", json=body, headers=self.headers, timeout=10)

    def setting(self, plugin: str) -> dict:
        answer = self.get(f"/lab/api/settings/{plugin}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def set_setting(self, plugin: str, values: dict) -> None:
        answer = self.put(f"/lab/api/settings/{plugin}", {"raw": json.dumps(values)})
        assert answer.status_code == 204, answer.text

    def terminal(self) -> "Terminal":
        answer = self.session.post(f"{self.base}/api/terminals", headers=self.headers, timeout=10)
        assert answer.status_code == 200, answer.text
        return Terminal(self, answer.json()["name"])


class Terminal:
    """A real JupyterLab terminal (terminado), driven as the browser drives it: JSON messages over a websocket."""

    def __init__(self, lab: Lab, name: str):
        import websocket

        cookie = "; ".join(f"{k}={v}" for k, v in lab.session.cookies.items())
        url = lab.base.replace("http://", "ws://") + f"/terminals/websocket/{name}"
        self.ws = websocket.create_connection(url, cookie=cookie, timeout=2)
        self.output = ""

    def run(self, line: str, expect: str, timeout: float = 30.0) -> str:
        """Type `line` and Enter, then wait for the regular expression `expect` in what the terminal prints."""
        import websocket

        start = len(self.output)
        self.ws.send(json.dumps(["stdin", line + "\r"]))
        deadline = time.monotonic() + timeout
        while not re.search(expect, self.output[start:]):
            if time.monotonic() > deadline:
                raise AssertionError(f"{expect!r} not printed within {timeout:g} s; the terminal shows:\n{self.output}")
            try:
                kind, *payload = json.loads(self.ws.recv())
            except websocket.WebSocketTimeoutException:
                continue
            if kind == "stdout":
                self.output += payload[0]
        return self.output[start:]

    def close(self) -> None:
        self.ws.close()


def kept(bucket: Bucket) -> dict[str, bytes]:
    return {k: v for k, v in bucket.files().items() if k.startswith(f"{KEPT}/")}


@pytest.mark.slow
def test_settings_workspace_and_history_come_back_on_a_fresh_container(s3, daemons):
    first = daemons(s3.env(), jupyter=True, name="first").start()
    lab = Lab(first)
    bucket = Bucket(first.tmp, s3.env())

    # A fresh container asks nothing: the news prompt is off (a default, not a choice the user made).
    notification = lab.setting(NOTIFICATION)
    assert notification["schema"]["properties"]["fetchNews"]["default"] == "false"
    assert "fetchNews" not in notification["settings"]

    assert lab.put("/api/contents/mine.ipynb", NOTEBOOK).status_code == 201
    lab.set_setting(THEMES, {"theme": "JupyterLab Dark"})
    lab.set_setting(NOTIFICATION, {"fetchNews": "true"})  # the user turns the news on: that choice is kept
    assert lab.put("/lab/api/workspaces/default", {"data": WORKSPACE, "metadata": {"id": "default"}}).status_code == 204

    terminal = lab.terminal()
    terminal.run(HISTORY_COMMAND, r"kept-in-history-42")
    # Appended at the next prompt, not when the shell exits: a kill now loses nothing of it.
    settled(lambda: HISTORY_COMMAND.encode() in kept(bucket).get(HISTORY_FILE, b""), timeout=30,
            message="the command in the bucket's history while the terminal still runs")
    terminal.close()

    # Caches in HOME stay out of the bucket.
    for cache in (first.home / ".cache/huggingface/model.bin", first.home / ".keras/models/model.keras"):
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(b"a downloaded model")
    first.wait_synced()
    assert first.stop(signal.SIGTERM) == 0

    files = bucket.files()
    assert {k for k in files if not k.startswith(f"{KEPT}/")} == {"mine.ipynb"}
    assert {k for k in files if k.startswith(f"{KEPT}/workspaces/")} and THEMES_FILE in files
    assert not list((first.home / ".jupyter").glob("lab/*")), "JupyterLab wrote its state into HOME"

    # A fresh container: new HOME, new data folder, the same bucket folder.
    second = daemons(s3.env(), jupyter=True, name="second").start()
    lab = Lab(second)
    assert lab.setting(THEMES)["settings"] == {"theme": "JupyterLab Dark"}
    assert lab.setting(NOTIFICATION)["settings"] == {"fetchNews": "true"}
    workspace = lab.get("/lab/api/workspaces/default")
    assert workspace.status_code == 200 and workspace.json()["data"] == WORKSPACE
    terminal = lab.terminal()
    terminal.run("history", r"\d+\s+" + re.escape(HISTORY_COMMAND))  # bash read the kept history at start
    terminal.close()

    # The file browser's listing holds the user's files only (and welcome.txt, the container's own).
    listing = lab.get("/api/contents")
    assert listing.status_code == 200
    assert {item["name"] for item in listing.json()["content"]} == {"mine.ipynb", "welcome.txt"}
    assert lab.get(f"/api/contents/{KEPT}").status_code == 404
    assert second.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_two_containers_changing_one_setting_keep_both_versions(s3, daemons):
    bucket_env = s3.env()
    one = daemons(bucket_env, jupyter=True, name="one").start(wait=False)
    other = daemons(bucket_env, jupyter=True, name="other").start(wait=False)
    one.wait_running()
    other.wait_running()
    bucket = Bucket(one.tmp, bucket_env)
    dark, light = {"theme": "JupyterLab Dark"}, {"theme": "JupyterLab Light", "theme-scrollbars": True}

    Lab(one).set_setting(THEMES, dark)
    settled(lambda: THEMES_FILE in kept(bucket), timeout=30, message="one's setting in the bucket")
    lab = Lab(other)
    lab.set_setting(THEMES, light)  # made without having seen one's: a conflict, as for any file

    def both_kept() -> bool:
        themes = [json.loads(v) for k, v in kept(bucket).items() if k.startswith(THEMES_FILE.rsplit(".", 1)[0])]
        return len(themes) == 2 and dark in themes and light in themes

    settled(both_kept, timeout=30, message="both versions of the setting in the bucket")
    assert lab.setting(THEMES)["settings"] == light  # the newer keeps the name
    assert one.stop(signal.SIGTERM) == 0 and other.stop(signal.SIGTERM) == 0


@pytest.mark.slow
def test_the_wheel_turns_the_news_prompt_off_for_a_plain_pip_install(tmp_path):
    """Without `start`'s help: the default JupyterLab reads from the folder the wheel installs into."""
    from jupyterlab_server.settings_utils import _get_overrides

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("rclone_jupyter-*.whl")
    prefix = "rclone_jupyter-0.1.0.data/data/share/jupyter/lab/settings"  # sys.prefix/share/jupyter/lab/settings
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if n.startswith(f"{prefix}/")]
        assert names == [f"{prefix}/overrides.d/rclone-jupyter.json"], names
        archive.extractall(tmp_path / "unpacked", members=names)
    overrides, error = _get_overrides(str(tmp_path / "unpacked" / prefix))
    assert not error and overrides == {NOTIFICATION: {"fetchNews": "false"}}


@pytest.mark.slow
def test_a_fresh_container_asks_nothing_in_a_real_browser(daemons):
    """JupyterLab's first page as a user sees it (Debian's chromium): no toast and no dialog asks anything, and
    the layout the page saves lands in the kept folder."""
    import shutil

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup.sh test does it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency (pip)")
    daemon = daemons({}, jupyter=True).start()  # no bucket: what JupyterLab asks does not depend on one
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=flags)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{daemon.port}/login", timeout=60_000)
            page.fill("input[type=password]", "data")
            page.click("#login_submit")
            page.wait_for_selector(".jp-Launcher", timeout=90_000)
            # The page saves its layout once it has settled: after that, anything it meant to ask is shown.
            wait_until(lambda: list((daemon.data / KEPT / "workspaces").glob("*.jupyterlab-workspace")), timeout=60,
                       message="the page's workspace in the kept folder")
            page.wait_for_load_state("networkidle", timeout=30_000)
            assert page.locator(".Toastify__toast").all_inner_texts() == []
            assert page.locator(".jp-Dialog").count() == 0
        finally:
            browser.close()
