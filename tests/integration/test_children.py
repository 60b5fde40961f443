"""Children die with the daemon (rclone_jupyter/children.py): real processes, no rclone needed.

The end-to-end proofs are tests/integration/test_rcd.py's and tests/end-to-end/test_jupyter.py's "does not outlive a daemon killed
with SIGKILL"; these show why every child is forked by one long-lived thread.
"""

from __future__ import annotations

import signal
import subprocess
import threading

import pytest

from rclone_jupyter.children import Spawner


def test_a_child_started_from_a_short_lived_thread_lives_until_the_spawner_stops():
    spawner = Spawner()
    started = []
    thread = threading.Thread(target=lambda: started.append(spawner.popen(["sleep", "60"])))
    thread.start()
    thread.join()
    (proc,) = started
    try:
        # The thread that asked is gone; the one that forked is not: PDEATHSIG has not fired.
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        spawner.stop()
        assert proc.wait(timeout=10) == -signal.SIGKILL  # the forking thread ended: the kernel killed it
    finally:
        proc.kill()
        proc.wait()


def test_the_spawner_starts_again_after_a_stop_and_reports_errors_to_the_caller():
    spawner = Spawner()
    spawner.stop()  # never started: nothing to do
    with pytest.raises(FileNotFoundError):
        spawner.popen(["/nonexistent/binary"])
    proc = spawner.popen(["true"])
    assert proc.wait(timeout=10) == 0
    spawner.stop()
    proc = spawner.popen(["true"])
    assert proc.wait(timeout=10) == 0
    spawner.stop()
