"""The restore's --exclude-from file (rclone/commands.exclude_lines) leaves out exactly the names it lists,
whatever their characters, read by real rclone (its local backend: no server needed)."""

from __future__ import annotations

import subprocess

from conftest import RCLONE, clean_env
from rclone_jupyter.rclone.commands import exclude_lines

NAMES = ["ends with a space ", "#not a comment", ";nor this", "star*", "[brackets]", "back\\slash", "{brace}",
         "a?b", "sub/deep name.txt", " leading space"]


def test_every_listed_name_is_excluded_and_nothing_else(tmp_path):
    root = tmp_path / "tree"
    for name in [*NAMES, "kept.txt", "sub/kept too.txt", "ends with a space"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    rules = tmp_path / "excludes.txt"
    rules.write_text(exclude_lines(NAMES))
    listed = subprocess.run([RCLONE, "lsf", "-R", "--files-only", str(root), "--exclude-from", str(rules)],
                            env=clean_env(RCLONE_CONFIG="/dev/null"), capture_output=True, text=True, check=True)
    assert sorted(listed.stdout.splitlines()) == ["ends with a space", "kept.txt", "sub/kept too.txt"]
