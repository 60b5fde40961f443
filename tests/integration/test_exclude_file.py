"""The restore's --exclude-from file (rclone/commands.exclude_lines) leaves out exactly the names it lists,
whatever their characters, read by real rclone (its local backend: no server needed)."""

from __future__ import annotations

import subprocess

from conftest import RCLONE, clean_env
from rclone_jupyter.rclone.commands import exclude_lines

NAMES = ["ends with a space ", "#not a comment", ";nor this", "star*", "[brackets]", "back\\slash", "{brace}",
         "a?b", "sub/deep name.txt", " leading space"]


def listed_with(tmp_path, names, excludes, kept) -> list[str]:
    root = tmp_path / "tree"
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("x")
    rules = tmp_path / "excludes.txt"
    rules.write_text(exclude_lines(excludes, kept))
    listed = subprocess.run([RCLONE, "lsf", "-R", "--files-only", str(root), "--exclude-from", str(rules)],
                            env=clean_env(RCLONE_CONFIG="/dev/null"), capture_output=True, text=True, check=True)
    return sorted(listed.stdout.splitlines())


def test_every_listed_name_is_excluded_and_nothing_else(tmp_path):
    kept = ["kept.txt", "sub/kept too.txt", "ends with a space"]
    assert listed_with(tmp_path, [*NAMES, *kept], NAMES, kept) == sorted(kept)


def test_a_folder_with_nothing_kept_below_it_is_one_rule_and_its_neighbours_stay(tmp_path):
    """2,600 names below a link object were 2,600 rules that rclone matched every object against (6 s of CPU
    at each start): a folder the copy keeps nothing of is left out whole, by one rule."""
    below_link = [f"moved [1]*/deep/{n:04d}.txt" for n in range(2000)] + ["moved [1]*/top.txt"]
    clash = ["mixed/x"]  # beside mixed/x/y.txt: the folder is kept, so the name is left out alone
    kept = ["moved [1]*.rclonelink", "moved [1]/kept.txt", "moved [1]*2/kept.txt", "mixed/x/y.txt", "mixed/z.txt"]
    rules = exclude_lines([*below_link, *clash], kept)
    assert rules.splitlines() == ["/moved \\[1\\]\\*/**", "/mixed/x"]
    assert listed_with(tmp_path, [*below_link, *kept], [*below_link, *clash], kept) == sorted(kept)
