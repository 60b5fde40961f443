"""What the engine costs in S3 requests (issue 11), counted from moto's request log.

Each test seeds small files in 10 folders with one `rclone copy` (N = 1,000 for the start, BESIDE = 300
where a change is counted beside them), runs a real
`rclone-jupyter start --no-jupyter` on moto's server (AWS-like: rclone's modtime lives in object metadata, so
reading it costs a HEAD per object) and counts the daemon's requests by kind (MotoS3.mark/counts; the tests'
own probes connect from 127.0.0.2 and are not counted).

The budgets (issue 11's goals):
- a start into an empty data folder: LIST pages + one GET per object + a constant, no HEAD per object;
- k objects added, changed or deleted in the bucket reach the data folder with O(LIST pages + k) requests;
- `sync --once` with one pending change: a constant number of requests (plus at most one listing).

"LIST pages" of one listing of the folder: at most one per folder (rclone lists folder by folder without
--fast-list, one page per 1,000 keys with it), so LISTING = FOLDERS + 3 (the root, `.rclone-jupyter/` and its
`nodes/`) bounds one full listing either way.

The first-generation engine ran a full bisync at start, on `sync --once` and on every bucket-side change,
reading every object's modtime with a HEAD: 2,002 HEADs for the start of 1,000 files. These tests failed on it.
"""

from __future__ import annotations

import time
from pathlib import Path

from conftest import Bucket, MotoS3, synced_tree, wait_until


N = 1_000
# The objects already in the bucket folder when a test changes something: the costs under test must not grow
# with them, which 300 show as well as 1,000 (a HEAD per object would be 300), on a third of moto's time.
BESIDE = 300
FOLDERS = 10
LISTING = FOLDERS + 3  # LIST pages of one full listing of the bucket folder, at most (see above)
# Requests of a start besides the restore's LISTs and GETs: bucket check (HEAD/LIST of the root), the
# heartbeat (PUT + LIST of `.rclone-jupyter/nodes/`) and the folder's own HEAD that rclone sends before a copy.
START_CONSTANT = 10
# Requests of one pushed change: HEAD + PUT (the steady state measured in issue 11), and one LIST-page look.
PER_CHANGE = 2


def seed(bucket: Bucket, tmp_path: Path, n: int = N) -> dict[str, bytes]:
    """n small files in FOLDERS folders, uploaded by one `rclone copy`; return them."""
    src = tmp_path / "seed"
    content = {f"d{i % FOLDERS}/f{i:04d}.txt": f"file {i}\n".encode() for i in range(n)}
    for rel, data in content.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    bucket._run("copy", str(src), bucket.remote.path(), "--transfers", "16", "--checkers", "16")
    return content


def env_for(moto: MotoS3, **extra: str) -> dict[str, str]:
    # No periodic heartbeat or reconcile unless a test asks: only the requests the test causes are counted.
    return {**moto.env(), "RCLONE_JUPYTER_HEARTBEAT_INTERVAL": "0", "RCLONE_JUPYTER_RECONCILE_INTERVAL": "0",
            **extra}


def report(counts) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) + f" (total {sum(counts.values())})"


def test_start_with_1000_files_sends_no_head_per_object(moto, daemons, tmp_path):
    bucket = Bucket(tmp_path, moto.env())
    content = seed(bucket, tmp_path)
    moto.mark()
    daemon = daemons(env_for(moto))
    daemon.data.mkdir()  # a new container: an empty data folder
    daemon.start()
    daemon.wait_synced()
    counts = moto.counts()
    assert synced_tree(daemon.data) == content
    # A HEAD per object would be N; a few are the bucket and folder checks of a start, whatever N is.
    assert counts["HEAD"] <= START_CONSTANT, report(counts)
    assert counts["GET"] <= N + START_CONSTANT, report(counts)  # one GET per object, each file once
    assert counts["LIST"] <= 2 * LISTING + START_CONSTANT, report(counts)  # the restore's listing, and one look
    assert sum(counts.values()) <= N + 2 * LISTING + START_CONSTANT, report(counts)
    assert daemon.stop() == 0


def test_three_changes_in_the_bucket_arrive_with_list_pages_and_three_transfers(moto, daemons, tmp_path):
    bucket = Bucket(tmp_path, moto.env())
    content = seed(bucket, tmp_path, BESIDE)
    interval = 1.0
    daemon = daemons(env_for(moto, RCLONE_JUPYTER_RECONCILE_INTERVAL=str(interval)))
    daemon.data.mkdir()
    daemon.start()
    daemon.wait_synced()
    assert synced_tree(daemon.data) == content

    moto.mark()
    started = time.monotonic()
    bucket.put("d0/added.txt", b"added elsewhere")  # the probe's own requests come from 127.0.0.2
    bucket.put("d1/f0001.txt", b"edited elsewhere")
    bucket.delete("d2/f0002.txt")
    expected = {**content, "d0/added.txt": b"added elsewhere", "d1/f0001.txt": b"edited elsewhere"}
    del expected["d2/f0002.txt"]
    wait_until(lambda: synced_tree(daemon.data) == expected, timeout=60, interval=0.2,
               message="the three bucket-side changes in the data folder")
    daemon.wait_synced()
    elapsed = time.monotonic() - started
    counts = moto.counts()
    looks = elapsed / interval + 2  # periodic looks while the test waited, at most
    k = 3
    # Every look is LIST pages only; what is not a LIST is for the k changes (a GET each for the added and
    # edited files, nothing for the delete) plus a constant of 4 (a HEAD of the folder root, a bucket check).
    assert counts["HEAD"] <= 4, report(counts)
    assert sum(counts.values()) - counts["LIST"] <= PER_CHANGE * k + 4, report(counts)
    assert counts["LIST"] <= looks * LISTING, f"{report(counts)}; {elapsed:.1f} s, at most {looks:.0f} looks"
    assert bucket.files() == expected  # nothing pushed back but what was there
    assert daemon.stop() == 0


def test_sync_once_with_one_pending_change_costs_a_constant(moto, daemons, tmp_path):
    bucket = Bucket(tmp_path, moto.env())
    content = seed(bucket, tmp_path, BESIDE)
    # A long quiet period: the change stays pending until `sync --once` pushes it.
    daemon = daemons(env_for(moto, RCLONE_JUPYTER_QUIET_PERIOD="60", RCLONE_JUPYTER_MAX_DELAY="120"))
    daemon.data.mkdir()
    daemon.start()
    daemon.wait_synced()
    # Kept open: a file still being written waits for the quiet period. A closed one is due 50 ms after its
    # close and saved before the status (written at most every 0.25 s) may ever show it pending.
    with open(daemon.data / "d3/mine.txt", "w") as still_open:
        still_open.write("one pending change")
        still_open.flush()
        wait_until(lambda: (daemon.status() or {}).get("pending") == 1, message="one pending change")

        moto.mark()
        result = daemon.cli("sync", "--once")
        counts = moto.counts()
    assert result.returncode == 0, result.stderr
    assert bucket.files() == {**content, "d3/mine.txt": b"one pending change"}
    # The change: HEAD + PUT; at most one listing of the folder (a look for outside changes) and a constant
    # of 4 beside them, whatever the number of objects. A full bisync would HEAD all BESIDE objects.
    assert counts["HEAD"] <= 1 + 4, report(counts)
    assert counts["LIST"] <= LISTING, report(counts)
    assert sum(counts.values()) - counts["LIST"] <= PER_CHANGE * 1 + 4, report(counts)
    assert daemon.stop() == 0
