"""Real programs in the data folder, then a stop and a fresh container on an empty disk (issue 10).

A running `rclone-jupyter start --no-jupyter` watches a data folder in which the test works as a user would:
git (a repository with an executable script, a commit, a tag, `git gc --prune=now`, and a clone of it), a
Python venv (`--without-pip`: small and fast; its `bin/python*` and `lib64` are symbolic links), shell
scripts (`chmod +x`, and a `chmod -x` after the first sync), SQLite (a few hundred transactions), an empty
folder, a folder emptied by deleting its files and a deleted empty folder. Then SIGTERM (exit 0), and a new
daemon restores the same bucket folder into an empty data folder. DESIGN invariant 9: the restored folder is
the folder that was left: contents, mtimes (to the millisecond), mode bits, symbolic links (same target text)
and empty folders, and every program works as before.

Every difference is collected and reported at once (a diff of the two trees, then each failed program check).
Runs on both S3 servers (rclone serve s3, moto), Azurite and fake-gcs-server.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cloud_servers import azurite, clouds, fake_gcs  # noqa: F401 - fixtures
from conftest import Bucket, settled, synced_tree
from rclone_jupyter.model.filters import is_noise

pytestmark = pytest.mark.slow

ROWS = 300


@pytest.fixture(params=["s3", "s3-moto", "azure", "gcs-json"], ids=["rclone-serve-s3", "moto", "azurite", "fake-gcs"])
def cloud(request, clouds):  # noqa: F811 - the fixture imported above
    return clouds(request.param)


# -- what a folder is: every entry with its type, mode, mtime and content or link target -----------------


def describe(root: Path) -> dict[str, tuple]:
    """{relative path: entry} of everything under root that is synced, links never followed.

    A file is ("file", mode bits, mtime in ms, content), a link ("link", target text), a folder ("dir",).
    Folder modes and mtimes are left out: the issue promises files' modes and mtimes, and folders' existence.
    """
    entries: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if is_noise(rel):
                continue
            info = os.lstat(full)
            if stat.S_ISLNK(info.st_mode):
                entries[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                entries[rel] = ("dir",)
            elif stat.S_ISREG(info.st_mode):
                entries[rel] = ("file", stat.S_IMODE(info.st_mode), info.st_mtime_ns // 1_000_000, full.read_bytes())
            else:
                entries[rel] = ("other", stat.S_IFMT(info.st_mode))
    return entries


def tree_differences(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Every way `after` differs from `before`, one line each (empty when they are the same)."""
    lines: list[str] = []
    for rel in sorted(set(before) | set(after)):
        old, new = before.get(rel), after.get(rel)
        if new is None:
            lines.append(f"missing   {rel}  (was {_kind(old)})")
        elif old is None:
            lines.append(f"extra     {rel}  ({_kind(new)})")
        elif old[0] != new[0]:
            lines.append(f"type      {rel}  {_kind(old)} -> {_kind(new)}")
        elif old[0] == "link" and old[1] != new[1]:
            lines.append(f"target    {rel}  {old[1]!r} -> {new[1]!r}")
        elif old[0] == "file":
            if old[1] != new[1]:
                lines.append(f"mode      {rel}  {old[1]:04o} -> {new[1]:04o}")
            if old[2] != new[2]:
                lines.append(f"mtime     {rel}  {old[2]} -> {new[2]} ms ({(new[2] - old[2]) / 1000:+.3f} s)")
            if old[3] != new[3]:
                lines.append(f"content   {rel}  {len(old[3])} -> {len(new[3])} bytes")
    return lines


def _kind(entry: tuple) -> str:
    if entry[0] == "link":
        return f"link -> {entry[1]}"
    if entry[0] == "file":
        return f"file {entry[1]:04o}"
    return entry[0]


class Findings:
    """Soft checks: each failure is recorded, and all of them are reported together at the end."""

    def __init__(self):
        self.failures: list[str] = []

    def check(self, ok: bool, what: str, detail: str = "") -> bool:
        if not ok:
            self.failures.append(what + (f": {detail.strip()}" if detail.strip() else ""))
        return ok

    def run(self, what: str, argv: list[str], cwd: Path, env: dict[str, str], expect: str | None = None) -> str:
        """Run a program; a failure (or output other than `expect`) is recorded. Return its stdout."""
        try:
            result = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        except OSError as exc:  # e.g. Permission denied, or a missing interpreter link
            self.check(False, what, f"{type(exc).__name__}: {exc}")
            return ""
        ok = result.returncode == 0 and (expect is None or result.stdout.strip() == expect)
        self.check(ok, what, f"exit {result.returncode}, stdout {result.stdout.strip()[:300]!r}, "
                             f"stderr {result.stderr.strip()[:300]!r}" + (f", expected {expect!r}" if expect else ""))
        return result.stdout.strip()

    def raise_if_any(self, header: str) -> None:
        if self.failures:
            raise AssertionError(f"{header}: {len(self.failures)} problem(s)\n  " + "\n  ".join(self.failures))


# -- the workload -----------------------------------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "rj", "GIT_AUTHOR_EMAIL": "rj@example.invalid",
        "GIT_COMMITTER_NAME": "rj", "GIT_COMMITTER_EMAIL": "rj@example.invalid",
        "LC_ALL": "C",
    }


def git(cwd: Path, env: dict[str, str], *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip()


def write(path: Path, content: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    if mode is not None:
        path.chmod(mode)


def wait_saved(daemon, bucket: Bucket) -> None:
    """Wait until nothing is pending and the bucket holds every regular file of the data folder."""
    daemon.wait_synced(timeout=60)

    def same() -> bool:
        remote = {k: v for k, v in bucket.files().items() if not k.endswith(".rclonelink")}
        return remote == synced_tree(daemon.data)

    settled(same, timeout=60, interval=0.5, message="the bucket holds every file of the data folder")


def make_workload(data: Path, tmp: Path, daemon, bucket: Bucket) -> dict:
    """The user's work in `data`; return what the checks after the restore compare against."""
    env = git_env(tmp / "git-home")
    (tmp / "git-home").mkdir(exist_ok=True)

    # git: a repository with an executable script, a commit, a tag, gc; then a clone of it.
    repo = data / "project"
    write(repo / "README.md", "# project\n")
    write(repo / "src/app.py", "print('app')\n")
    write(repo / "tools/build.sh", "#!/bin/sh\necho built\n", 0o755)
    git(data, env, "init", "-q", "-b", "main", str(repo))
    git(repo, env, "add", "-A")
    git(repo, env, "commit", "-q", "-m", "first")
    git(repo, env, "tag", "-a", "v1", "-m", "release 1")
    write(repo / "src/app.py", "print('app, second')\n")
    git(repo, env, "commit", "-q", "-am", "second")
    git(repo, env, "gc", "-q", "--prune=now")
    git(data, env, "clone", "-q", str(repo), str(data / "clone"))

    # A venv: bin/python, bin/python3, bin/python3.X and lib64 are symbolic links.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(data / "venv")], check=True, timeout=120)

    # Scripts: one executable, one made executable then not (after its first sync).
    write(data / "run.sh", "#!/bin/sh\necho ran\n", 0o755)
    write(data / "was-exec.sh", "#!/bin/sh\necho should not run\n", 0o755)

    # SQLite: ROWS transactions, each committed (the journal comes and goes every time).
    with sqlite3.connect(data / "db.sqlite") as db:
        db.execute("create table t (id integer primary key, value text)")
    db = sqlite3.connect(data / "db.sqlite")
    for i in range(ROWS):
        with db:
            db.execute("insert into t (id, value) values (?, ?)", (i, f"row {i}"))
    db.close()

    # Folders: one empty, one to be emptied, one to be deleted.
    (data / "empty-folder").mkdir()
    write(data / "emptied/a.txt", "a")
    write(data / "emptied/b/c.txt", "c")
    (data / "deleted-empty").mkdir()

    wait_saved(daemon, bucket)  # the first sync of everything above
    (data / "was-exec.sh").chmod(0o644)  # a mode change alone
    (data / "emptied/a.txt").unlink()
    (data / "emptied/b/c.txt").unlink()
    (data / "emptied/b").rmdir()
    (data / "deleted-empty").rmdir()
    wait_saved(daemon, bucket)

    return {
        "git_env": env,
        "head": git(repo, env, "rev-parse", "HEAD"),
        "tag": git(repo, env, "rev-parse", "v1"),
        "clone_head": git(data / "clone", env, "rev-parse", "HEAD"),
        "clone_tag": git(data / "clone", env, "rev-parse", "v1"),
    }


def check_programs(data: Path, before: dict, found: Findings) -> None:
    env = before["git_env"]
    for name, head, tag in (("project", before["head"], before["tag"]),
                            ("clone", before["clone_head"], before["clone_tag"])):
        repo = data / name
        if not found.check((repo / ".git").is_dir(), f"git {name}: .git is there"):
            continue
        found.run(f"git {name}: status --porcelain is empty", ["git", "status", "--porcelain"], repo, env, expect="")
        found.run(f"git {name}: fsck --full", ["git", "fsck", "--full", "--no-progress"], repo, env)
        found.run(f"git {name}: HEAD", ["git", "rev-parse", "HEAD"], repo, env, expect=head)
        found.run(f"git {name}: tag v1", ["git", "rev-parse", "v1"], repo, env, expect=tag)
        found.run(f"git {name}: tools/build.sh runs", ["./tools/build.sh"], repo, env, expect="built")

    venv_python = data / "venv/bin/python"
    found.run("venv: bin/python runs and is the venv's",
              [str(venv_python), "-c", "import sys; print(sys.prefix != sys.base_prefix)"], data, env, expect="True")
    found.run("./run.sh runs", ["./run.sh"], data, env, expect="ran")
    found.check(not os.access(data / "was-exec.sh", os.X_OK), "was-exec.sh is no longer executable (chmod -x)",
                f"mode {stat.S_IMODE(os.lstat(data / 'was-exec.sh').st_mode):04o}"
                if os.path.lexists(data / "was-exec.sh") else "missing")

    try:
        db = sqlite3.connect(f"file:{data / 'db.sqlite'}?mode=ro", uri=True)
        try:
            found.check(db.execute("pragma integrity_check").fetchone()[0] == "ok", "sqlite integrity_check == ok")
            rows = db.execute("select id, value from t order by id").fetchall()
            found.check(rows == [(i, f"row {i}") for i in range(ROWS)], f"sqlite: all {ROWS} rows",
                        f"{len(rows)} rows")
        finally:
            db.close()
    except sqlite3.Error as exc:
        found.check(False, "sqlite opens", str(exc))

    found.check((data / "empty-folder").is_dir(), "the empty folder exists")
    found.check((data / "emptied").is_dir(), "the emptied folder exists")
    found.check(not (data / "emptied/b").exists(), "the emptied folder's deleted subfolder does not")
    found.check(not (data / "deleted-empty").exists(), "the deleted empty folder does not exist")


def test_real_programs_survive_a_stop_and_a_fresh_container(cloud, daemons, tmp_path):
    env = cloud.env()
    bucket = Bucket(tmp_path, env)
    old = daemons(env, name="old")
    old.data.mkdir()
    old.start()
    before = make_workload(old.data, tmp_path, old, bucket)
    left = describe(old.data)
    assert any(entry[0] == "link" for entry in left.values()), "the workload has symbolic links (the venv's)"

    assert old.stop(signal.SIGTERM) == 0, old.log()[-3000:]
    # The programs work in the folder that was left (so a failure below is the restore's, not the workload's).
    sanity = Findings()
    check_programs(old.data, before, sanity)
    sanity.raise_if_any("the workload itself, before any restore")

    fresh = daemons(env, name="fresh")
    fresh.data.mkdir()  # a new container: an empty disk
    fresh.start()
    found = Findings()
    for line in tree_differences(left, describe(fresh.data)):
        found.check(False, "tree", line)
    check_programs(fresh.data, before, found)
    assert fresh.stop() == 0
    found.raise_if_any("the restored data folder is not the folder that was left")
