"""The supervisor's start and stop order (daemon/supervisor.py), with fakes of its own collaborators.

No process is spawned and no storage is touched: the engines, syncers, watcher, disk monitor, control channel
and JupyterLab are scripted fakes that write what happens to them into one journal, and the clock is fake.
What must hold: the restore comes before the watch and JupyterLab (invariant 1); a stop stops JupyterLab
first, then the watcher, then flushes; every part that was started is stopped, in the reverse order of its
start, whichever way the run ends; the exit code says what happened.
"""

from __future__ import annotations

import gc
import signal
import threading
import weakref
from types import SimpleNamespace

import pytest

from rclone_jupyter.model.to_come import ToCome
from rclone_jupyter.config import settings as settings_mod
from rclone_jupyter.daemon.status import Phase
from rclone_jupyter.daemon.supervisor import Parts, Signalled, Supervisor
from rclone_jupyter.state import StateDir


class FakeClock:
    """Each reading moves time on by `tick`: a loop that waits for a deadline ends without real waiting."""

    def __init__(self, tick: float = 0.0):
        self.now = 1000.0
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeRclone:
    def __init__(self, journal: list[str], name: str):
        self.journal, self.name = journal, name
        self.killed = threading.Event()

    def kill(self) -> None:
        self.journal.append(f"rclone.kill {self.name}")
        self.killed.set()


class FakeEngine:
    def __init__(self, journal: list[str], name: str, *, restore_blocks: bool = False, on_restore=None):
        self.journal = journal
        self.remote = SimpleNamespace(name=name, display=f"s3://bucket/{name}")
        self.rclone = FakeRclone(journal, name)
        self.skipped: dict = {}
        self.remote_was_empty = False
        self.restore_blocks = restore_blocks
        self.on_restore = on_restore
        self.to_come = ToCome()  # no large file left for after JupyterLab (daemon/large_files.py)

    def use_listing(self, _entries) -> None:
        pass

    def restore(self, merge: bool = False, on_progress=None, large_from=None) -> None:
        self.journal.append(f"restore {self.remote.name}")
        if self.on_restore is not None:
            self.on_restore()
        if self.restore_blocks:  # a long restore: it ends when its rclone is killed
            self.rclone.killed.wait(10)
            raise RuntimeError("rclone was killed")

    def establish(self, merged: bool = False, several: bool = False) -> None:
        self.journal.append(f"establish {self.remote.name}")

    # What the status shows of this remote after the baseline (nothing skipped, everything savable).
    not_saved: dict = {}

    def not_saved_shown(self, limit: int = 50) -> dict:
        return {}

    def skipped_shown(self, limit: int = 50) -> dict:
        return {"skipped": {}, "skipped_count": 0, "skipped_file": None}


class FakeThreadPart:
    """A started-and-stopped part (syncer, disk monitor): journals its first stop only."""

    def __init__(self, journal: list[str], name: str, *, flushes: bool = True):
        self.journal, self.name = journal, name
        self.running = False
        self.flushes = flushes  # False: the flush never ends on its own (a bucket that does not answer)
        self.flushed_ok = False

    def start(self) -> None:
        self.running = True
        self.journal.append(f"start {self.name}")

    def stop(self) -> None:
        if self.running and self.flushes:
            self.running = False
            self.flushed_ok = True
            self.journal.append(f"stop {self.name}")

    def abandon(self) -> None:
        self.running = False
        self.journal.append(f"abandon {self.name}")

    def is_alive(self) -> bool:
        return self.running

    def join(self, timeout: float | None = None) -> None:
        pass

    def pending(self) -> set[str]:
        return set() if self.flushed_ok else {"unsaved.txt"}

    def note(self, rel: str, finished: bool = False) -> None:
        pass

    def note_overflow(self) -> None:
        pass


class FakeWatcher:
    def __init__(self, journal: list[str]):
        self.journal = journal
        self.running = False

    def start(self) -> None:
        self.running = True
        self.journal.append("start watcher")

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.journal.append("stop watcher")


class FakeControl:
    def __init__(self, journal: list[str], routes):
        self.journal, self.routes = journal, routes

    def start(self) -> None:
        self.journal.append("start control")

    def stop(self) -> None:
        self.journal.append("stop control")


class FakeJupyterLab:
    """A scripted JupyterLab: `on_start` runs when it is started; SIGTERM makes it exit 0."""

    pid = 4242

    def __init__(self, journal: list[str], exit_code: int | None = None):
        self.journal = journal
        self.code = exit_code
        self.exited = threading.Event()
        if exit_code is not None:
            self.exited.set()

    def poll(self) -> int | None:
        return self.code

    def wait(self, timeout: float | None = None) -> int:
        self.exited.wait()
        return self.code

    def terminate(self) -> None:
        self.journal.append("terminate jupyter")
        self._exit(0)

    def kill(self) -> None:
        self.journal.append("kill jupyter")
        self._exit(-9)

    def _exit(self, code: int) -> None:
        if self.code is None:
            self.code = code
            self.exited.set()


class FakeParts(Parts):
    def __init__(self, tmp_path, *, clock: FakeClock, engines: list[str], restore_blocks: bool = False,
                 flushes: bool = True, jupyter_exit: int | None = None, on_jupyter=None, on_restore=None):
        self.journal: list[str] = []
        self.tmp_path = tmp_path
        self.clock = clock
        self.sleep = clock.sleep
        self.names = engines
        self.restore_blocks = restore_blocks
        self.flushes = flushes
        self.jupyter_exit = jupyter_exit
        self.on_jupyter = on_jupyter
        self.on_restore = on_restore

    def prepare(self, settings, env):
        return StateDir(settings.state_dir).ensure(), "rclone"

    def preflight(self, settings, state, binary, env, board):
        self.journal.append("preflight")
        return SimpleNamespace(entries={name: self.listing_for(name) for name in self.names})

    def listing_for(self, name: str) -> list:
        return []

    def engines(self, settings, state, binary, env, changes):
        return [FakeEngine(self.journal, name, restore_blocks=self.restore_blocks, on_restore=self.on_restore)
                for name in self.names]

    def syncer(self, engine, changes, settings, board):
        part = FakeThreadPart(self.journal, f"syncer {engine.remote.name}", flushes=self.flushes)
        part.engine = engine
        return part

    def watcher(self, settings, note, overflow):
        return FakeWatcher(self.journal)

    def disk_monitor(self, settings, board):
        return FakeThreadPart(self.journal, "disk monitor")

    def control(self, state, routes):
        return FakeControl(self.journal, routes)

    def jupyter(self, settings, state, env):
        self.journal.append("start jupyter")
        proc = FakeJupyterLab(self.journal, self.jupyter_exit)
        if self.on_jupyter is not None:
            self.on_jupyter()
        return proc

    def stop_spawner(self) -> None:
        self.journal.append("stop spawner")


def settings_for(tmp_path, **extra):
    env = {"HOME": str(tmp_path / "home"), "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data"),
           "RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"), "RCLONE_JUPYTER_EXAMPLES_DIR": "",
           "AWS_S3_BUCKET_FOLDER": "bucket/me", "AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "fake",
           **extra}
    return settings_mod.load(env)


def supervise(tmp_path, settings=None, **kwargs):
    clock = kwargs.pop("clock", FakeClock())
    parts = FakeParts(tmp_path, clock=clock, engines=kwargs.pop("engines", ["s3"]), **kwargs)
    supervisor = Supervisor(settings or settings_for(tmp_path), env={}, parts=parts)
    return supervisor, parts


def test_start_in_order_and_a_signal_stops_everything_in_reverse(tmp_path):
    supervisor, parts = supervise(tmp_path, on_jupyter=lambda: supervisor.events.put(Signalled(signal.SIGTERM)))
    assert supervisor.run() == 0
    assert parts.journal == [
        "start control", "preflight", "restore s3", "establish s3",  # the restore before anything watches
        "start syncer s3", "start watcher", "start disk monitor", "start jupyter",  # JupyterLab last
        # SIGTERM: JupyterLab first (nothing new is written), then the watcher, then the flush...
        "terminate jupyter", "stop watcher", "stop syncer s3",
        # ...then the rest, in the reverse order of its start; the spawner (children die with it) last.
        "stop disk monitor", "stop control", "stop spawner",
    ]
    assert supervisor.board.snapshot()["phase"] == Phase.STOPPED.value
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are given back


def test_a_signal_during_the_restore_stops_what_was_started_and_nothing_else(tmp_path):
    supervisor, parts = supervise(tmp_path, engines=["s3", "azure"], restore_blocks=True,
                                  on_restore=lambda: supervisor.events.put(Signalled(signal.SIGINT)))
    assert supervisor.run() == 128 + signal.SIGINT
    assert parts.journal[:3] == ["start control", "preflight", "restore s3"]
    assert parts.journal[3:] == ["rclone.kill s3", "rclone.kill azure", "stop control", "stop spawner"]
    assert supervisor.board.snapshot()["phase"] == Phase.STOPPED.value


def test_jupyterlab_exiting_on_its_own_flushes_and_passes_its_code(tmp_path):
    supervisor, parts = supervise(tmp_path, jupyter_exit=3)
    assert supervisor.run() == 3
    assert parts.journal == ["start control", "preflight", "restore s3", "establish s3", "start syncer s3",
                             "start watcher", "start disk monitor", "start jupyter",
                             "stop watcher", "stop syncer s3", "stop disk monitor", "stop control", "stop spawner"]
    assert "terminate jupyter" not in parts.journal and "kill jupyter" not in parts.journal


def test_a_flush_past_its_deadline_is_abandoned_and_the_exit_says_so(tmp_path):
    settings = settings_for(tmp_path, RCLONE_JUPYTER_FLUSH_DEADLINE="5")
    clock = FakeClock(tick=1.0)  # the deadline passes after a few looks at the clock, not 5 real seconds
    supervisor, parts = supervise(tmp_path, settings, clock=clock, flushes=False,
                                  on_jupyter=lambda: supervisor.events.put(Signalled(signal.SIGTERM)))
    assert supervisor.run() == 1
    tail = parts.journal[parts.journal.index("terminate jupyter"):]
    assert tail == ["terminate jupyter", "stop watcher", "abandon syncer s3", "rclone.kill s3",
                    "stop disk monitor", "stop control", "stop spawner"]


def test_a_second_signal_skips_the_flush(tmp_path):
    supervisor, parts = supervise(tmp_path, flushes=False, on_jupyter=lambda: [
        supervisor.events.put(Signalled(signal.SIGTERM)), supervisor.events.put(Signalled(signal.SIGTERM))])
    assert supervisor.run() == 128 + signal.SIGTERM
    tail = parts.journal[parts.journal.index("terminate jupyter"):]
    assert tail == ["terminate jupyter", "stop watcher", "abandon syncer s3", "rclone.kill s3",
                    "stop disk monitor", "stop control", "stop spawner"]


def test_a_sync_asked_during_a_restore_that_never_ends_is_answered(tmp_path):
    """POST /sync asked during the restore waits for syncing; a start that stops first still answers it."""
    answers = []

    def ask_then_stop():
        asked.start()
        supervisor.events.put(Signalled(signal.SIGTERM))

    supervisor, parts = supervise(tmp_path, restore_blocks=True, on_restore=ask_then_stop)
    asked = threading.Thread(target=lambda: answers.append(supervisor._sync_route(None)))
    supervisor.run()
    asked.join(5)
    assert answers == [(200, {"ok": False, "error": "rclone-jupyter stopped before it could sync"})]


def test_a_sync_a_syncer_never_answers_is_answered_at_the_end(tmp_path):
    """A syncer that never resolves a request (stuck): the route still answers once the run ends, so stopping
    the control channel, which waits for every answer, cannot hang the exit."""
    from concurrent.futures import Future

    answers = []

    def ask_then_stop():
        for syncer in supervisor.syncers:
            syncer.request_full_sync = Future  # a request nobody will ever resolve
        asked.start()
        supervisor.events.put(Signalled(signal.SIGTERM))

    supervisor, parts = supervise(tmp_path, on_jupyter=ask_then_stop)
    asked = threading.Thread(target=lambda: answers.append(supervisor._sync_route(None)))
    assert supervisor.run() == 0
    asked.join(5)
    assert answers == [(200, {"ok": False, "error": "rclone-jupyter stopped before it answered"})]


@pytest.mark.parametrize("lines, error, answer", [
    (["upload a.txt"], None, {"ok": True, "error": None, "plan": {"s3://bucket/s3": ["upload a.txt"]}}),
    (None, "the bucket cannot be reached",
     {"ok": False, "error": "s3://bucket/s3: the bucket cannot be reached", "plan": {}}),
])
def test_the_plan_route_answers_each_clouds_plan_under_its_name(tmp_path, lines, error, answer):
    """POST /plan (`sync --once --dry-run`): the syncer's plan under its cloud's name; an error names its cloud."""
    from concurrent.futures import Future

    answers = []

    def ask_then_stop():
        (syncer,) = supervisor.syncers
        planned = Future()
        planned.set_result((lines, error))
        syncer.request_plan = lambda: planned
        answers.append(supervisor._plan_route(None))
        supervisor.events.put(Signalled(signal.SIGTERM))

    supervisor, parts = supervise(tmp_path, on_jupyter=ask_then_stop)
    assert supervisor.run() == 0
    assert answers == [(200, answer)]


class Listing(list):
    """A listing that can be watched with a weak reference (a plain list cannot)."""


def test_the_start_listing_is_not_kept_once_the_engines_have_it(tmp_path):
    """The pre-flight's raw listing (about 400 bytes an object: a million objects are 400 MB) is handed to the
    engines and must not stay alive in the supervisor's frame for as long as the daemon runs."""
    listings = []

    def still_alive() -> list[bool]:
        gc.collect()
        return [ref() is not None for ref in listings]

    seen = []
    supervisor, parts = supervise(tmp_path, on_jupyter=lambda: [
        seen.append(still_alive()), supervisor.events.put(Signalled(signal.SIGTERM))])

    def listing_for(name):
        made = Listing([{"Path": "a.txt", "Size": 1}])
        listings.append(weakref.ref(made))
        return made

    parts.listing_for = listing_for
    assert supervisor.run() == 0
    assert len(listings) == 1 and seen == [[False]]  # while running (JupyterLab started): gone
