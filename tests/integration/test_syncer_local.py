"""The syncer's thread against the local store: a save is pushed while a heartbeat is stuck on its way.

On a node's slow link the presence heartbeat (a PUT and a LIST) takes several round trips; the save made in
the meantime must not wait for it. Here the heartbeat blocks until the test lets it go: the save must land
in the bucket while it is blocked, and the stop must end the heartbeat's thread.
"""

from __future__ import annotations

import threading

from conftest import wait_until
from engine_local import local_engine, stop_rcd  # noqa: F401 - stop_rcd is a fixture
from rclone_jupyter.config.settings import Timing
from rclone_jupyter.daemon.status import StatusBoard
from rclone_jupyter.daemon.syncer import RemoteSyncer
from rclone_jupyter.model.changes import ChangeSet


class StuckPresence:
    """A heartbeat that does not come back until released; counts its beats and its leave."""

    def __init__(self, engine):
        self.engine = engine
        self.interval = 0.05
        self.beating = threading.Event()
        self.release = threading.Event()
        self.left = False

    def beat(self):
        self.beating.set()
        self.release.wait(30)
        return []

    def leave(self):
        self.left = True


def test_a_save_lands_while_the_heartbeat_is_stuck_and_the_stop_ends_the_heartbeat(tmp_path, stop_rcd):  # noqa: F811
    changes = ChangeSet()
    engine, bucket = local_engine(tmp_path, pending_here=changes.pending)
    stop_rcd.append(engine)
    engine.restore()
    engine.establish()
    board = StatusBoard(tmp_path / "status.json", {engine.remote.name: engine.remote.display}, persistent=True)
    syncer = RemoteSyncer(engine, changes, Timing(quiet_period=0.05, max_delay=0.5, reconcile_interval=0,
                                                  heartbeat_interval=0.05), board)
    stuck = StuckPresence(engine)
    syncer.heartbeat.presence = stuck
    syncer.start()
    try:
        assert stuck.beating.wait(10), "the heartbeat never began"
        (engine.data_dir / "notebook.ipynb").write_text("{}")
        syncer.note("notebook.ipynb", finished=True)
        wait_until(lambda: not syncer.pending(), timeout=10, message="the save pushed while the heartbeat is stuck")
        assert bucket.files() == {"notebook.ipynb": b"{}"}
        assert not stuck.release.is_set()  # still stuck: the save did not wait for it
    finally:
        stuck.release.set()
        syncer.stop()
        syncer.join(10)
    assert not syncer.is_alive()
    assert not syncer.heartbeat.is_alive()
    assert stuck.left  # a clean stop removes this node's heartbeat object
