"""`sync --once` ("Save now") asked while a file keeps changing: it answers once the newest version has landed.

A file changed again after its push, while the full sync still ran (its LIST-only look at the bucket), is pending
after the full sync's push: the answer waits for it. It used to wait for the large lane alone, which never ran
for a small file, so the answer never came (JupyterLab's "Save now" timed out after 60 s, seen once under load).
Here a link with a 2 s round trip (tests/throttle.py) makes the look last long enough to change the file in it:
the push's answer comes back 1 s after the server has the object, the look takes 2 s or more after that.
"""

from __future__ import annotations

import threading
import time

from conftest import Bucket, wait_until
from throttle import ThrottledLink


def test_sync_once_answers_when_a_file_changed_during_it_has_landed(s3, daemons, tmp_path):
    with ThrottledLink(int(s3.endpoint.rsplit(":", 1)[1]), rtt=0.0) as link:
        # A quiet period long enough that the open file stays pending until `sync --once` pushes it (asked at
        # once), and no longer: a path pushed less than a quiet period ago waits that long again (a log closed
        # line by line is saved once per quiet period), so its second version lands that long after the first.
        daemon = daemons({**s3.env(), "AWS_ENDPOINT_URL": link.url, "RCLONE_JUPYTER_QUIET_PERIOD": "12",
                          "RCLONE_JUPYTER_MAX_DELAY": "24",
                          # No heartbeat: its first one, on the syncer's thread, would cross the 2 s link first.
                          "RCLONE_JUPYTER_HEARTBEAT_INTERVAL": "0"}).start()
        link.one_way = 1.0  # the round trip of 2 s from here on (the start and the stop need none)
        bucket = Bucket(tmp_path, s3.env())  # straight to the server
        answer: list = []
        with open(daemon.data / "a.txt", "w") as still_open:
            still_open.write("first version\n")
            still_open.flush()
            wait_until(lambda: (daemon.status() or {}).get("pending") == 1, message="a.txt pending")
            asking = threading.Thread(target=lambda: answer.append(daemon.cli("sync", "--once", timeout=90)))
            asking.start()
            # The first version landed; once the push has its answer (1 s later), the full sync looks at the
            # bucket (2 s a request): change the file then.
            wait_until(lambda: bucket.files().get("a.txt") == b"first version\n", 30, 0.05,
                       message="the first version in the bucket")
            time.sleep(1.8)
            assert asking.is_alive(), "the full sync was over before the file could change during it"
            still_open.write("second version\n")
        link.one_way = 0.0  # changed during the look: the rest needs no slow link
        asking.join(100)
        assert answer, "sync --once never answered"
        assert answer[0].returncode == 0, answer[0].stderr
        # Answered once everything pending is saved: the second version too.
        assert bucket.files()["a.txt"] == b"first version\nsecond version\n"
        assert daemon.stop() == 0
