"""Pure parts of the two-stage start: the names still to come, placing without replacing, `wait`'s answers,
the argv of the two restores, and the README's probe recipe against SaladCloud's limits."""

from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import ROOT

from rclone_jupyter.daemon.wait import look, relative_paths, still_to_come
from rclone_jupyter.local.tree import place
from rclone_jupyter.model.baseline import Baseline
from rclone_jupyter.model.known import Known, Version
from rclone_jupyter.model.to_come import ToCome
from rclone_jupyter.rclone import commands


def test_a_claimed_name_is_never_placed_and_an_arrival_is_handed_over_once():
    to_come = ToCome()
    to_come.expect({"a.bin": (10, 1), "b.bin": (20, 2), "c.bin": (30, 3)})
    assert to_come.bytes_total == 60
    assert to_come.claim(["b.bin", "notes.txt"]) == {"b.bin"}  # the user wrote b.bin first: the push's now
    placed = []
    assert not to_come.settle("b.bin", lambda: placed.append("b") or Known(20, 2))
    assert placed == []  # never even tried
    assert to_come.settle("a.bin", lambda: Known(10, 1, (10, 1)))
    assert not to_come.settle("c.bin", lambda: None)  # something was there: not placed, no longer waited for
    baseline = Baseline()
    assert to_come.into(baseline) == frozenset()  # nothing waits any more
    assert dict(baseline) == {"a.bin": Known(10, 1, Version(10, 1))}  # only what was placed is known
    assert to_come.take() == ({}, frozenset()) and not to_come


def test_place_without_replacing_never_takes_a_name_that_exists(tmp_path):
    root = tmp_path / "data"
    (root / "m").mkdir(parents=True)
    staged = root / ".staged"
    staged.write_bytes(b"the bucket's")
    (root / "m" / "w.bin").write_bytes(b"mine")
    assert not place(root, staged, "m/w.bin", replace=False)
    assert (root / "m" / "w.bin").read_bytes() == b"mine" and staged.exists()
    assert place(root, staged, "m/new.bin", replace=False)
    assert (root / "m" / "new.bin").read_bytes() == b"the bucket's" and not staged.exists()
    assert os.stat(root / "m" / "new.bin").st_nlink == 1
    # Never through a link on the way.
    os.symlink(tmp_path, root / "link")
    staged.write_bytes(b"x")
    assert not place(root, staged, "link/escaped.bin", replace=False)
    assert not (tmp_path / "escaped.bin").exists()


def test_wait_paths_are_data_folder_paths(tmp_path):
    data = tmp_path / "data"
    assert relative_paths(data, ["models/w.bin", str(data / "a")], cwd=data / "sub") == ["sub/models/w.bin", "a"]
    assert relative_paths(data, ["models"], cwd=Path("/")) == ["models"]  # outside: relative to the data folder
    try:
        relative_paths(data, ["/etc/passwd"], cwd=data)
    except ValueError as exc:
        assert "/etc/passwd" in str(exc)
    else:
        raise AssertionError("a path outside the data folder was accepted")


def test_wait_answers():
    running = {"running": True, "phase": "running", "restore": {"state": "running"}}
    assert still_to_come(["models/a.bin", "data/x"], ["models", "code", "data/x"]) == ["models", "data/x"]
    assert not look(running, ["models/a.bin"], ["models"]).done
    assert look(running, ["models/a.bin"], ["code/m.py"]).done
    assert not look(running, ["models/a.bin"], []).done  # everything
    assert not look(running, None, ["x"]).done  # the list is not written yet
    assert look({**running, "restore": {"state": "done"}}, [], []).ok
    assert not look({"running": True, "phase": "restoring"}, None, []).done
    stopped = look({"running": False, "phase": "stopped"}, ["models/a.bin"], ["models"])
    assert stopped.done and not stopped.ok and "not running" in stopped.message
    failed = look({**running, "restore": {"state": "failed"}}, [], [])
    assert failed.done and not failed.ok


def test_the_two_restores_argv(tmp_path):
    first = commands.restore("s3:b/f", tmp_path, max_size=8 * 1024 * 1024)
    assert first[first.index("--max-size") + 1] == "8388608B"  # bytes: a bare number would be KiB
    assert first[first.index("--transfers") + 1] == "64" and first[first.index("--checkers") + 1] == "64"
    assert "--max-size" not in commands.restore("s3:b/f", tmp_path)
    later = commands.restore_later("s3:b/f", tmp_path / "staging", tmp_path / "list.txt")
    assert later[:3] == ("copy", "s3:b/f/", str(tmp_path / "staging"))
    assert later[later.index("--files-from-raw") + 1] == str(tmp_path / "list.txt")
    assert later[later.index("--order-by") + 1] == "size,ascending"
    assert "-v" in later  # one "Copied" record per file: how each is placed as soon as it is whole
    assert "sync" not in later and "--delete-during" not in later


def test_the_readme_probe_recipe_fits_saladclouds_limits():
    text = (ROOT / "README.md").read_text()
    for probe in ("Startup probe", "Readiness probe"):
        line = re.search(rf"\*\*{probe}\*\*.*?(?=\n- \*\*|\n\n)", text, re.S).group(0)
        values = {name: int(v) for name, v in re.findall(
            r"(initial delay|period|timeout|failure threshold) (\d+)", " ".join(line.split()))}
        assert values.get("initial delay", 0) <= 1200 and values["period"] <= 120, (probe, values)
        assert values["failure threshold"] <= 20, (probe, values)
        assert "rclone-jupyter health" in line
