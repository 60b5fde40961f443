"""The push side on a residential link (issue 16): small never waits for big, a growing file is not sent again
and again, the stop saves the small files first, a cancelled upload leaves nothing half-written.

Each test runs a real `rclone-jupyter start --no-jupyter` against `rclone serve s3` and moto, each behind the
throttled link of tests/throttle.py (1 MiB/s up, 8 MiB/s down: a 8 MiB file needs 8 s). The assertions are
orderings (the notebook is in the bucket while the large file is still on its way) and bounds with wide
margins, never speed goals: a loaded machine makes everything slower, and the link is slower still.
"""

from __future__ import annotations

import signal
import time

import pytest

from conftest import wait_until
from link_fixtures import MiB, UP, random_bytes, save_atomically, slow_s3  # noqa: F401 - slow_s3 is a fixture

from rclone_jupyter.model.lanes import SHARE

NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'


def uploading_started(slow, at_least: int = MiB // 2):
    """Wait until the link has carried `at_least` bytes up since now: an upload is under way."""
    start = slow.link.bytes_up
    wait_until(lambda: slow.link.bytes_up - start >= at_least, 60, 0.02, message="an upload under way")


def test_a_save_lands_while_a_large_file_uploads(slow_s3, daemons):
    """A notebook saved while an 8 MiB file uploads (8 s on this link) is in the bucket long before it, and the
    large file is pending in the status until its upload is acknowledged."""
    daemon = daemons(slow_s3.env()).start()
    big = random_bytes(8 * MiB)
    (daemon.data / "model.bin").write_bytes(big)
    uploading_started(slow_s3)
    saved = time.monotonic()
    save_atomically(daemon.data / "analysis.ipynb", NOTEBOOK)

    seen = wait_until(lambda: (lambda s: s if "analysis.ipynb" in s else None)(slow_s3.sizes()), 60, 0.05,
                      message="the notebook in the bucket")
    latency = time.monotonic() - saved
    status = daemon.status()
    # The ordering: the notebook is durable while the large file is still on its way (not even half of it
    # can have crossed the link by then).
    assert "model.bin" not in seen, f"the notebook landed only after the large file ({latency:.1f} s)"
    assert latency < len(big) / UP / 2, f"the notebook took {latency:.1f} s"
    # Durable means acknowledged: the large file is pending until its upload succeeded.
    assert "model.bin" in status["pending_paths"], status

    daemon.wait_synced(timeout=90)
    assert slow_s3.cat("model.bin") == big
    assert slow_s3.cat("analysis.ipynb") == NOTEBOOK


def test_the_stop_saves_the_small_files_and_names_the_large_one(slow_s3, daemons):
    """SIGTERM 0.5 s after saving 3 notebooks while a 16 MiB file uploads (16 s on this link), with a 4 s flush
    deadline: the 3 notebooks are in the bucket, the exit code is not 0, the log names the large file, and no
    part of it is in the bucket."""
    daemon = daemons({**slow_s3.env(), "RCLONE_JUPYTER_FLUSH_DEADLINE": "4"}).start()
    (daemon.data / "checkpoint.bin").write_bytes(random_bytes(16 * MiB))
    uploading_started(slow_s3)
    notebooks = {f"nb{i}.ipynb": NOTEBOOK.replace(b"{}", f'{{"n": {i}}}'.encode()) for i in range(3)}
    for name, content in notebooks.items():
        save_atomically(daemon.data / name, content)
    time.sleep(0.5)  # the scenario: the signal comes half a second after the saves
    code = daemon.stop(signal.SIGTERM, timeout=90)
    log = daemon.log()

    assert code != 0, log[-3000:]
    sizes = slow_s3.sizes()
    for name, content in notebooks.items():
        assert name in sizes, f"{name} was lost at the stop; log:\n{log[-3000:]}"
        assert slow_s3.cat(name) == content
    unsaved = [line for line in log.splitlines() if "NOT saved" in line]
    assert unsaved and "checkpoint.bin" in unsaved[-1], log[-3000:]
    assert not any(name in unsaved[-1] for name in notebooks), unsaved[-1]
    assert "checkpoint.bin" not in sizes, "a partial checkpoint is in the bucket"
    if slow_s3.kind == "moto":
        assert slow_s3.multipart_uploads() == []


def test_a_slowly_written_file_is_not_sent_again_and_again(slow_s3, daemons):
    """An 8 MiB file written over 8 s through one open file (as a training loop writes a log or a checkpoint),
    at the uplink's rate, with a forced upload every 2 s (RCLONE_JUPYTER_MAX_DELAY), costs about 1.5x its size at
    most on the uplink (each forced attempt that is cut short makes the next wait), lands whole, and no alarming
    WARNING is logged for it. (Uploading it at every forced moment sent 1.75x.)"""
    quiet = 1.0  # the product's default: a writer the machine stalls for 0.3 s (the tests' default) looks done
    daemon = daemons({**slow_s3.env(), "RCLONE_JUPYTER_QUIET_PERIOD": str(quiet)}).start()
    size, chunk = 8 * MiB, 64 * 1024
    content = random_bytes(size)
    before = slow_s3.link.bytes_up
    began = last = time.monotonic()
    stalls = 0  # pauses of the writer as long as the quiet period: each may rightly start an upload at once
    with open(daemon.data / "run.log", "wb") as out:
        for offset in range(0, size, chunk):
            out.write(content[offset:offset + chunk])
            out.flush()
            now = time.monotonic()
            stalls += now - last >= quiet
            last = now
            time.sleep(8.0 * chunk / size)
    writing = time.monotonic() - began
    daemon.wait_synced(timeout=90)
    sent = slow_s3.link.bytes_up - before

    assert slow_s3.cat("run.log") == content
    # The promise (model/lanes.py): attempts cut short take at most 1 / (SHARE + 1) of the uplink while the file
    # is written, plus what an attempt stopped by a write had handed to the sockets (counted 2 MiB), plus the
    # upload that lands. Over 8 s of writing that is 1.5x; a loaded machine writes slower, and the bound grows
    # with the time it took and with each stall. (2.02x was seen when the link buffered ~8 MB at its edge, as
    # loopback does: tests/throttle.py now buffers as a home link does; measured since: 1.00-1.22x.)
    wasted = UP * writing / (SHARE + 1) + (1 + stalls) * 2 * MiB
    assert sent <= size + wasted, (f"{sent / size:.2f} bytes sent up per byte written, over {writing:.1f} s of "
                                   f"writing with {stalls} stall(s)")
    warnings = [line for line in daemon.log().splitlines() if "WARNING" in line and "run.log" in line]
    assert not warnings, warnings


def test_a_newer_version_replaces_the_upload_in_flight(slow_s3, daemons):
    """A checkpoint saved again while its first version uploads: the first upload is cancelled (it never lands),
    no partial object ever shows under the name, and the bucket ends with the newer version.

    The first version is much larger than what the sockets between rclone and the link can hold (a few hundred
    KB: tests/throttle.py): bytes handed to the network before the cancel still arrive, and had they completed the first
    upload's body, the server would rightly have stored it (the newer version replaces it a moment later)."""
    daemon = daemons(slow_s3.env()).start()
    first, second = random_bytes(24 * MiB), random_bytes(7 * MiB)  # different sizes: a listing tells them apart
    path = daemon.data / "checkpoint.bin"
    save_atomically(path, first)
    uploading_started(slow_s3, MiB)
    save_atomically(path, second)

    seen_sizes = set()

    def landed():
        size = slow_s3.sizes().get("checkpoint.bin")
        if size is not None:
            seen_sizes.add(size)
        status = daemon.status() or {}
        return size == len(second) and status.get("pending") == 0

    wait_until(landed, 90, 0.1, message="the newer version in the bucket")
    assert seen_sizes == {len(second)}, f"the bucket showed sizes {seen_sizes} under the name"
    assert slow_s3.cat("checkpoint.bin") == second
    if slow_s3.kind == "moto":
        assert slow_s3.multipart_uploads() == []


def test_a_file_deleted_while_it_uploads_leaves_nothing_in_the_bucket(slow_s3, daemons):
    """A checkpoint deleted while its upload is in flight (the user freeing room, a script cleaning up): the
    upload stops, nothing ever shows under the name, nothing stays pending, and the log says it was deleted
    (not that it is sent again)."""
    daemon = daemons(slow_s3.env()).start()
    path = daemon.data / "scratch.bin"
    path.write_bytes(random_bytes(24 * MiB))
    uploading_started(slow_s3, MiB)
    path.unlink()
    (daemon.data / "notes.txt").write_text("saved after the delete\n")

    seen = set()

    def settled_here():
        names = slow_s3.sizes()
        seen.update(names)
        return names.get("notes.txt") is not None and (daemon.status() or {}).get("pending") == 0

    wait_until(settled_here, 90, 0.1, message="the delete and the new file settled")
    assert "scratch.bin" not in seen, "the deleted file showed in the bucket"
    assert slow_s3.cat("notes.txt") == b"saved after the delete\n"
    if slow_s3.kind == "moto":
        assert slow_s3.multipart_uploads() == []
    deleted = "scratch.bin was deleted while it was uploaded"
    assert deleted in daemon.log()
    # Not sent again after the delete. (Before it, a 24 MiB write slower than the quiet period, as on a loaded
    # machine, may be caught half-written: that attempt is the one "changed while it was uploaded" is about.)
    assert "scratch.bin changed while it was uploaded" not in daemon.log().split(deleted, 1)[1]
    assert daemon.stop() == 0


def test_sync_once_waits_for_the_large_file_in_flight(slow_s3, daemons):
    """`sync --once` means everything is saved: asked while a large file uploads in the background, it answers
    once that upload has landed, and the file is then in the bucket, whole."""
    daemon = daemons(slow_s3.env()).start()
    big = random_bytes(4 * MiB)
    (daemon.data / "weights.bin").write_bytes(big)
    uploading_started(slow_s3)
    result = daemon.cli("sync", "--once")
    assert result.returncode == 0, result.stderr
    assert slow_s3.sizes().get("weights.bin") == len(big)
    assert slow_s3.cat("weights.bin") == big
