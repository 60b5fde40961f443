"""The status bar item and the panel in a real browser (Debian's chromium driven by Playwright), against the
JupyterLab of a real `rclone-jupyter start` and a real S3 server that the test stops and starts again.

Set RJ_SCREENSHOT_DIR to keep the screenshots (README's are made so: RJ_SCREENSHOT_DIR=docs/img).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from conftest import one_s3_server


@pytest.fixture
def s3(tmp_path_factory):
    """JupyterLab's side is tested here, not the storage's: one S3 server is enough (conftest.one_s3_server)."""
    yield from one_s3_server(tmp_path_factory)

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ITEM = ".rj-StatusItem"
STATUS_ROUTE = "/rclone-jupyter/api/status"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup.sh test does it as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test dependency (pip)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def screenshot_dir(tmp_path: Path) -> Path:
    target = os.environ.get("RJ_SCREENSHOT_DIR")
    return Path(target) if target else tmp_path


def open_lab(browser, port: int, password: str = "data"):
    page = browser.new_page(viewport={"width": 1100, "height": 640})
    page.goto(f"http://127.0.0.1:{port}/login", timeout=30_000)
    page.fill("input[type=password]", password)
    page.click("#login_submit")
    page.wait_for_selector(ITEM, timeout=60_000)
    return page


def shoot_item(page, path: Path) -> None:
    """The left part of the status bar, up to a little past the item: the item as a user sees it."""
    box = page.locator(ITEM).bounding_box()
    bar = page.locator("#jp-main-statusbar").bounding_box()
    page.screenshot(path=str(path), clip={"x": bar["x"], "y": bar["y"], "width": box["x"] + box["width"] + 24,
                                          "height": bar["height"]})


def dismiss_news(page) -> None:
    """JupyterLab 4 asks about news in a toast on first load; answer it so it does not cover the panel."""
    question = page.get_by_text("Would you like to get notified")
    if question.count():
        page.get_by_role("button", name="No", exact=True).click()
        question.wait_for(state="hidden", timeout=5000)


def expect_item(page, pattern: str, timeout: float, error: bool | None = None) -> None:
    from playwright.sync_api import expect

    item = page.locator(ITEM)
    expect(item).to_have_text(re.compile(pattern), timeout=timeout * 1000)
    if error is not None:
        expect(item).to_have_class(re.compile(r"\brj-error\b") if error else re.compile(r"^(?!.*\brj-error\b)"),
                                   timeout=2000)


class Appender(threading.Thread):
    """A training log: one file kept open, a line appended every 0.2 s for `seconds`."""

    def __init__(self, path: Path, seconds: float):
        super().__init__(daemon=True)
        self.path, self.seconds = path, seconds

    def run(self) -> None:
        with open(self.path, "a") as log:
            end = time.monotonic() + self.seconds
            step = 0
            while time.monotonic() < end:
                log.write(f"step {step} loss {1 / (step + 1):.4f}\n")
                log.flush()
                step += 1
                time.sleep(0.2)


def test_the_item_follows_saving_failing_and_recovering_and_save_now_answers(browser, s3, daemons, tmp_path):
    daemon = daemons(s3.env(), jupyter=True).start()
    page = open_lab(browser, daemon.port)
    shots = screenshot_dir(tmp_path)
    expect_item(page, r"^Saved \d+ s ago$", timeout=15, error=False)
    tooltip = page.locator(ITEM).get_attribute("title")
    assert "s3://bucket/team/alice" in tooltip and "ok, 0 files pending" in tooltip
    assert s3.secret not in tooltip and s3.key_id not in tooltip

    # At most one poll every 2 s while the tab is visible...
    polls: list[float] = []
    page.on("request", lambda request: polls.append(time.monotonic()) if STATUS_ROUTE in request.url else None)
    page.wait_for_timeout(6500)  # not time.sleep: Playwright delivers the request events while it waits
    assert 2 <= len(polls) <= 4, f"{len(polls)} polls in 6.5 s"
    # ...and none while it is hidden; back in view, one at once.
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    hidden_from = len(polls)
    page.wait_for_timeout(5000)
    assert len(polls) == hidden_from, "polled while the tab was hidden"
    page.evaluate("""() => {
        Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""")
    page.wait_for_timeout(1000)
    assert len(polls) > hidden_from, "no poll when the tab came back in view"

    # A training log written for several seconds: "Saving", then "Saved" once it stops.
    writer = Appender(daemon.data / "train.log", seconds=6)
    writer.start()
    expect_item(page, r"^Saving \d+ files?$", timeout=6, error=False)
    shoot_item(page, shots / "status-item-saving.png")
    writer.join()
    expect_item(page, r"^Saved \d+ s ago$", timeout=20, error=False)
    shoot_item(page, shots / "status-item-saved.png")

    # The storage gone: "Not saved: <reason>" in the error colour, within 30 s of the next change.
    s3.stop()
    (daemon.data / "notes.txt").write_text("written while the bucket is unreachable")
    expect_item(page, r"^Not saved: .+", timeout=30, error=True)
    shoot_item(page, shots / "status-item-not-saved.png")
    s3.start()
    expect_item(page, r"^Saved \d+ s ago$", timeout=60, error=False)

    # The panel, by keyboard: focus the item, Enter; then "Save now" and its answer.
    page.focus(ITEM)
    page.keyboard.press("Enter")
    panel = page.locator(".rj-Panel")
    panel.wait_for(timeout=10_000)
    assert "s3://bucket/team/alice" in panel.inner_text()
    button = panel.get_by_role("button", name="Save now")
    button.click()
    from playwright.sync_api import expect

    expect(panel.locator(".rj-Result")).to_have_text(re.compile(r"^Everything is saved \("), timeout=60_000)
    expect(panel.locator(".rj-Summary")).to_have_text(re.compile(r"^Saved \d+ s ago$"), timeout=10_000)
    assert "Last complete sync" in panel.inner_text()
    dismiss_news(page)
    page.screenshot(path=str(shots / "sync-panel.png"))

    # Recently deleted or replaced: a file deleted here is listed, found by a search, and Recover brings it back.
    (daemon.data / "notes.txt").unlink()
    history = panel.locator(".rj-History")
    recover = history.get_by_role("button", name="Recover notes.txt")
    refresh = history.get_by_role("button", name="Refresh")
    deadline = time.monotonic() + 30
    while not recover.count():
        assert time.monotonic() < deadline, f"notes.txt never listed: {history.inner_text()}"
        refresh.click()
        page.wait_for_timeout(500)
    assert "Every delete" in history.inner_text() and "for 7 days" in history.inner_text()
    assert history.get_by_role("button", name="Recover train.log").count()  # its first overwrite is kept too
    history.get_by_placeholder("Search by path").fill("NOTES")
    expect(history.get_by_role("button", name="Recover train.log")).to_have_count(0, timeout=10_000)
    assert re.search(r"\d+ kept versions? matching \"NOTES\"", history.inner_text())
    recover.first.click()
    expect(history.locator(".rj-RecoverResult")).to_have_text(re.compile(r"^Recovered notes.txt: "), timeout=60_000)
    assert (daemon.data / "notes.txt").read_text() == "written while the bucket is unreachable"
    assert s3.secret not in page.content()
    page.close()


def test_without_a_bucket_the_item_says_not_persisted(browser, daemons, tmp_path):
    daemon = daemons({}, jupyter=True, name="alone").start()
    page = open_lab(browser, daemon.port)
    expect_item(page, r"^Not persisted$", timeout=15, error=True)
    shoot_item(page, screenshot_dir(tmp_path) / "status-item-not-persisted.png")
    page.locator(ITEM).click()
    panel = page.locator(".rj-Panel")
    panel.wait_for(timeout=10_000)
    assert "No bucket is configured" in panel.inner_text()
    assert panel.get_by_role("button", name="Save now").is_disabled()
    page.close()
