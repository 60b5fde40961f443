"""The inotify watch budget used up while running (it is per user on the node, shared with everything else):
a folder that cannot be watched switches the watcher to scanning, with one walk for what it missed, says so,
and the status never says saved for a tree it no longer watches.

The daemon runs in a user namespace of its own (`unshare -U -r`) whose inotify budget is set low
(/proc/sys/user/max_inotify_watches): the rest of the machine keeps its own.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import CLI, Daemon, wait_until
from hostile_fixtures import S3Api, warnings

WATCHES = 12  # the namespace's budget: the data folder's few folders fit at start, twenty more do not


class NamespacedDaemon(Daemon):
    """A daemon in a user namespace with a small inotify watch budget."""

    def start(self, wait: bool = True) -> "Daemon":
        self._log = open(self.log_path, "ab")
        script = f'echo {WATCHES} > /proc/sys/user/max_inotify_watches && exec "$0" start --no-jupyter'
        self.proc = subprocess.Popen(["unshare", "-U", "-r", "sh", "-c", script, CLI], env=self.env,
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if wait:
            self.wait_running()
        return self


def namespace_budget_works() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-U", "-r", "sh", "-c", "echo 5 > /proc/sys/user/max_inotify_watches"],
                           capture_output=True)
    return probe.returncode == 0


def test_watches_used_up_while_running_switch_to_scanning_and_nothing_goes_unsaved(s3, tmp_path):
    if not namespace_budget_works():
        pytest.skip("user namespaces with their own inotify budget are not available here")
    api = S3Api(s3)
    daemon = NamespacedDaemon(tmp_path, {**s3.env(), "RCLONE_JUPYTER_POLL_INTERVAL": "1"})
    try:
        daemon.start()
        for n in range(20):  # more folders than the budget has watches left
            (daemon.data / f"new-{n:02d}").mkdir()
        (daemon.data / "marker.txt").write_text("after the folders")
        wait_until(lambda: "marker.txt" in api.names(), message="the folders' batch done")
        daemon.wait_synced(timeout=60)
        for n in range(20):  # written after the folders were made: only a watch or a scan sees these
            (daemon.data / f"new-{n:02d}" / "work.txt").write_text(f"work {n}")
        expected = {f"new-{n:02d}/work.txt" for n in range(20)}
        wait_until(lambda: expected <= api.names(), timeout=60, message="every file in every new folder saved")
        assert warnings(daemon.log(), "watch limit was reached while running")  # and it said so
        status = daemon.wait_synced(timeout=60)
        assert status["pending"] == 0
        assert len(warnings(daemon.log(), "watch limit was reached while running")) == 1
        assert daemon.stop() == 0
        assert "every change is saved" in daemon.log()
        assert "Traceback" not in daemon.log()
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
