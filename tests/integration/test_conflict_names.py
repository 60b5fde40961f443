"""A conflict copy never lands on an object another machine made since the last look: the conflict name must
be free in the bucket too, checked, not assumed. On both S3 servers; the other machine is the S3 API."""

from __future__ import annotations

import time

from conftest import wait_until
from hostile_fixtures import S3Api


def test_the_conflict_name_is_checked_free_in_the_bucket(s3, daemons):
    api = S3Api(s3)
    api.put("x.ipynb", b"first")
    daemon = daemons(s3.env()).start()
    # Another machine, meanwhile: its own conflict copy of x, and a new version of x.
    api.put("x.conflict1.ipynb", b"the other machine's conflict copy")
    time.sleep(1.1)  # whole seconds of the servers' times: the other machine's x is older than ours below
    api.put("x.ipynb", b"theirs")
    time.sleep(1.1)
    (daemon.data / "x.ipynb").write_text("mine")  # changed here too: a conflict at the push
    wait_until(lambda: "x.conflict2.ipynb" in api.names(), timeout=30, message="the next free conflict name used")
    daemon.wait_synced()
    assert api.get("x.conflict1.ipynb") == b"the other machine's conflict copy"
    assert {api.get("x.ipynb"), api.get("x.conflict2.ipynb")} == {b"mine", b"theirs"}
    assert daemon.stop() == 0
