"""What the watcher tells the syncer for each kind of change (local/watcher.py, on inotify): the paths, relative to
the data folder, and whether each is `finished` (will stay as it is: its upload need not wait for a quiet
period). A path left out here is a change never uploaded."""

from __future__ import annotations

import os
import threading
import time
import pytest

from rclone_jupyter.local.watcher import InotifyObserver, Watcher

pytestmark = pytest.mark.skipif(InotifyObserver is None, reason="inotify is Linux's")


class Told:
    """The sink: every (path, finished) the watcher reported, in order."""

    def __init__(self):
        self.calls: list[tuple[str, bool]] = []
        self._lock = threading.Lock()

    def __call__(self, rel: str, finished: bool) -> None:
        with self._lock:
            self.calls.append((rel, finished))

    def wait_for(self, *expected: tuple[str, bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(e in self.calls for e in expected):
                    return
            time.sleep(0.02)
        raise AssertionError(f"never told {[e for e in expected if e not in self.calls]}; told {self.calls}")

    def wait_until(self, condition, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if condition(self.calls):
                    return
            time.sleep(0.02)
        raise AssertionError(f"not as expected; told {self.calls}")

    def paths(self) -> set[str]:
        with self._lock:
            return {rel for rel, _ in self.calls}


@pytest.fixture
def watched(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    told = Told()
    watcher = Watcher(data, told)
    watcher.start()
    assert not watcher.polling
    yield data, told, tmp_path / "outside"
    watcher.stop()


def test_a_new_file_is_unfinished_until_it_is_closed(watched):
    data, told, _ = watched
    with open(data / "a.txt", "w") as f:
        f.write("x")
        f.flush()
        told.wait_for(("a.txt", False))
        assert ("a.txt", True) not in told.calls  # still open: its upload waits for a quiet period
    told.wait_for(("a.txt", True))


def test_renames_inside_the_data_folder_tell_both_names_and_every_path_below_a_moved_folder(watched):
    data, told, _ = watched
    (data / "d" / "sub").mkdir(parents=True)
    (data / "d" / "sub" / "f.txt").write_text("f")
    (data / "n.txt").write_text("n")
    # (a file written at once into a new folder may be told unfinished: see the burst test below)
    told.wait_until(lambda calls: {"d/sub/f.txt", "n.txt"} <= {rel for rel, _ in calls})
    os.rename(data / "n.txt", data / "m.txt")  # Jupyter's atomic save is such a rename
    os.rename(data / "d", data / "e")
    told.wait_for(("n.txt", True), ("m.txt", True), ("d", True), ("e", True),
                  ("d/sub/f.txt", True), ("e/sub/f.txt", True), ("e/sub", True))


def test_what_is_moved_in_from_outside_is_whole_and_what_is_moved_out_is_gone(watched):
    data, told, outside = watched
    (outside / "folder").mkdir(parents=True)
    (outside / "folder" / "inside.txt").write_text("inside")
    (outside / "file.txt").write_text("file")
    os.rename(outside / "file.txt", data / "file.txt")
    os.rename(outside / "folder", data / "folder")
    told.wait_for(("file.txt", True), ("folder", True), ("folder/inside.txt", True))
    os.rename(data / "file.txt", outside / "back.txt")  # told once the watcher knows no rename pairs it
    told.wait_until(lambda calls: calls.count(("file.txt", True)) == 2)


def test_deletes_folders_links_and_mode_changes_are_told_and_noise_is_not(watched):
    data, told, _ = watched
    (data / "c.txt").write_text("c")
    told.wait_for(("c.txt", True))
    os.chmod(data / "c.txt", 0o600)
    (data / "new").mkdir()
    os.symlink("c.txt", data / "lnk")
    (data / ".ipynb_checkpoints").mkdir()
    (data / ".ipynb_checkpoints" / "c-checkpoint.txt").write_text("noise")
    told.wait_for(("c.txt", False), ("new", True), ("lnk", True))
    os.unlink(data / "c.txt")
    told.wait_until(lambda calls: calls.count(("c.txt", True)) == 2)
    assert not any(p.startswith(".ipynb_checkpoints") for p in told.paths())


def test_a_burst_of_files_in_new_folders_is_told_path_by_path(watched):
    data, told, _ = watched
    names = set()
    for i in range(300):  # folders made and filled at once: some files are there before the folder's watch
        folder = data / f"u{i // 50}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i}.txt").write_text(str(i))
        names.add(f"u{i // 50}/f{i}.txt")
    # A file closed before its folder's watch was added is found by watchdog's walk of the new folder, as
    # created: told unfinished (its upload waits for the quiet period), but told.
    told.wait_until(lambda calls: names <= {rel for rel, _ in calls}, timeout=20)
