"""`rclone-jupyter sync --once --dry-run`: prints the plan and changes nothing, with a running `start` (its own
plan: the pending pushes, then what the reconcile would bring in) and without one (bisync's dry run).

What must hold, on both S3 servers: the plan names each change; afterwards the data folder, the bucket and
the pending changes are exactly as before; the real `sync --once` then does what the plan said.
"""

from __future__ import annotations

import time

from conftest import Bucket, Daemon, synced_tree


def test_with_a_running_start_the_plan_is_printed_and_nothing_moves(s3, daemons, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": "60", "RCLONE_JUPYTER_MAX_DELAY": "120"}).start()
    # A file still open for writing waits for the quiet period: it stays pending while we look.
    handle = open(daemon.data / "draft.ipynb", "w")
    try:
        handle.write("{}")
        handle.flush()
        deadline = time.monotonic() + 20
        while (daemon.status() or {}).get("pending") != 1:
            assert time.monotonic() < deadline, "the open file never showed as pending"
            time.sleep(0.1)
        bucket.put("from-elsewhere.txt", b"made on another machine")
        before_here, before_there = synced_tree(daemon.data), bucket.files()

        result = daemon.cli("sync", "--once", "--dry-run")

        assert result.returncode == 0, result.stderr
        assert "upload draft.ipynb" in result.stdout
        assert "bring in from-elsewhere.txt" in result.stdout
        assert "Nothing was changed" in result.stdout
        assert synced_tree(daemon.data) == before_here and bucket.files() == before_there
        assert (daemon.status() or {}).get("pending") == 1  # still waiting: the dry run pushed nothing
    finally:
        handle.close()
    assert daemon.cli("sync", "--once").returncode == 0  # and the real sync does what the plan said
    assert bucket.files()["draft.ipynb"] == b"{}"
    assert (daemon.data / "from-elsewhere.txt").read_bytes() == b"made on another machine"
    assert daemon.stop() == 0


def test_without_a_running_start_bisync_says_what_it_would_do_and_does_nothing(s3, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("in-bucket.txt", b"there")
    shell = Daemon(tmp_path, s3.env())  # its environment only: no `start` runs
    shell.data.mkdir()
    (shell.data / "here.txt").write_text("here")

    result = shell.cli("sync", "--once", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "copy in-bucket.txt (to the data folder)" in result.stdout
    assert "copy here.txt (to the bucket)" in result.stdout
    assert synced_tree(shell.data) == {"here.txt": b"here"} and bucket.files() == {"in-bucket.txt": b"there"}
    assert shell.cli("sync", "--once").returncode == 0  # the real one, after: it does what was planned
    assert bucket.files() == {"in-bucket.txt": b"there", "here.txt": b"here"}
