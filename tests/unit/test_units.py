"""Unit tests of the pure parts: settings, templates, argv builders, the debouncer, bisync's report, filters."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

from rclone_jupyter.rclone import commands
from rclone_jupyter.config import settings as settings_mod
from rclone_jupyter.model.stamps import stamp_ns
from rclone_jupyter.rclone.bisync_report import BisyncReport, parse_listing
from rclone_jupyter.model.changes import ChangeSet
from rclone_jupyter.model.debounce import Debouncer
from rclone_jupyter.errors import ConfigError
from rclone_jupyter.model.filters import is_noise
from rclone_jupyter.logs import SecretMask
from rclone_jupyter.config.remotes import render_config
from rclone_jupyter.rclone.runner import classify

S3_ENV = {
    "AWS_S3_BUCKET_FOLDER": "my-bucket/team/alice",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "s3cr3t/with+chars",
    "HOME": "/home/u",
}


def load(env):
    return settings_mod.load(env)


# -- settings ----------------------------------------------------------------------------------------------

def test_defaults_without_cloud_variables():
    s = load({"HOME": "/home/u"})
    assert s.password == "data" and s.password_is_default
    assert str(s.data_dir) == "/root/data"
    assert s.port == 8000
    assert s.remotes == ()
    assert not s.persistent
    assert str(s.state_dir) == "/home/u/.local/state/rclone-jupyter"
    assert s.timing.quiet_period <= 2 and s.timing.max_delay <= 30


def test_s3_settings_are_parsed():
    s = load({**S3_ENV, "JUPYTERLAB_PW": "pw", "AWS_REGION": "eu-west-1"})
    (remote,) = s.remotes
    assert remote.root == "my-bucket/team/alice"
    assert remote.bucket == "my-bucket"
    assert remote.path("a/b.txt") == "s3:my-bucket/team/alice/a/b.txt"
    assert remote.options["region"] == "eu-west-1"
    assert remote.options["provider"] == "AWS"
    assert "s3cr3t" not in remote.display
    assert set(s.secrets()) == {"pw", "s3cr3t/with+chars"}


@pytest.mark.parametrize("value, root", [
    ("s3://my-bucket/", "my-bucket"),
    ("'my-bucket/a//b/'", "my-bucket/a/b"),
    ('"my-bucket"', "my-bucket"),
])
def test_bucket_folder_forms(value, root):
    assert load({**S3_ENV, "AWS_S3_BUCKET_FOLDER": value}).remotes[0].root == root


def test_endpoint_selects_an_s3_compatible_provider():
    remote = load({**S3_ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}).remotes[0]
    assert remote.options["provider"] == "Other"
    assert remote.options["endpoint"] == "http://127.0.0.1:9000"
    assert remote.options["force_path_style"] == "true"
    r2 = load({**S3_ENV, "AWS_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com"}).remotes[0]
    assert r2.options["provider"] == "Cloudflare"


def problems(env) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(env)
    return info.value.problems


def test_a_key_without_its_partner_is_an_error():
    found = problems({"AWS_ACCESS_KEY_ID": "AKIA"})
    assert any("AWS_SECRET_ACCESS_KEY" in p for p in found)
    assert any("AWS_S3_BUCKET_FOLDER" in p for p in found)
    found = problems({"AWS_SECRET_ACCESS_KEY": "hush-hush-value"})
    assert any("AWS_ACCESS_KEY_ID" in p for p in found)
    assert not any("hush-hush-value" in p for p in found)


def test_every_problem_is_reported_at_once():
    found = problems({
        **S3_ENV,
        "AWS_S3_BUCKET_FOLDER": "Bad_Bucket!",
        "AWS_ENDPOINT_URL": "minio:9000",
        "JUPYTERLAB_PORT": "eighty",
        "RCLONE_JUPYTER_QUIET_PERIOD": "-1",
        "RCLONE_JUPYTER_PUSH_MODE": "teleport",
        "RCLONE_JUPYTER_LOG_LEVEL": "LOUD",
    })
    for name in ("AWS_S3_BUCKET_FOLDER", "AWS_ENDPOINT_URL", "JUPYTERLAB_PORT", "RCLONE_JUPYTER_QUIET_PERIOD",
                 "RCLONE_JUPYTER_PUSH_MODE", "RCLONE_JUPYTER_LOG_LEVEL"):
        assert any(p.startswith(name) for p in found), name


def test_credentials_in_the_endpoint_are_refused_without_echoing_them():
    found = problems({**S3_ENV, "AWS_ENDPOINT_URL": "https://admin:hunter2-pass@minio.example.com:9000"})
    assert any(p.startswith("AWS_ENDPOINT_URL contains credentials") for p in found)
    assert not any("hunter2-pass" in p for p in found)


def test_max_delay_shorter_than_quiet_period_is_an_error():
    assert any("RCLONE_JUPYTER_MAX_DELAY" in p for p in problems(
        {"RCLONE_JUPYTER_QUIET_PERIOD": "5", "RCLONE_JUPYTER_MAX_DELAY": "1"}))


def test_state_dir_inside_data_dir_is_an_error():
    found = problems({"RCLONE_JUPYTER_DATA_DIR": "/tmp/d", "RCLONE_JUPYTER_STATE_DIR": "/tmp/d/.state"})
    assert any("RCLONE_JUPYTER_STATE_DIR" in p for p in found)


def test_a_line_break_in_a_secret_is_refused_without_echoing_it():
    found = problems({**S3_ENV, "AWS_SECRET_ACCESS_KEY": "abc\nendpoint = http://evil"})
    assert any("AWS_SECRET_ACCESS_KEY" in p and "line break" in p for p in found)
    assert not any("evil" in p for p in found)


def test_cli_overrides_win_over_the_environment():
    s = settings_mod.load({"RCLONE_JUPYTER_DATA_DIR": "/a", "JUPYTERLAB_PORT": "1234"}, data_dir="/b", port=4321)
    assert str(s.data_dir) == "/b" and s.port == 4321


# -- templates -----------------------------------------------------------------------------------------------

def test_s3_template_renders_a_valid_section_with_every_value():
    remote = load({**S3_ENV, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_SESSION_TOKEN": "tok"}).remotes[0]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render_config((remote,)))
    section = parser["s3"]
    assert section["type"] == "s3"
    assert section["access_key_id"] == "AKIAEXAMPLE"
    assert section["secret_access_key"] == "s3cr3t/with+chars"
    assert section["session_token"] == "tok"
    assert section["endpoint"] == "http://127.0.0.1:9000"
    assert section["env_auth"] == "false"


# -- argv builders -------------------------------------------------------------------------------------------

def test_restore_argv_copies_and_never_syncs(tmp_path):
    argv = commands.restore("s3:b/f", tmp_path)
    assert argv[:3] == ("copy", "s3:b/f", str(tmp_path))
    assert "--update" in argv  # newer local files are kept
    assert "sync" not in argv and "--delete-during" not in argv


def test_bisync_argv(tmp_path):
    argv = commands.bisync(tmp_path / "d", "s3:b/f", tmp_path / "w")
    assert argv[:3] == ("bisync", str(tmp_path / "d"), "s3:b/f")
    assert argv[argv.index("--workdir") + 1] == str(tmp_path / "w")
    assert argv[argv.index("--conflict-loser") + 1] == "num"
    assert "--suffix-keep-extension" in argv
    assert "--resync" not in argv and "--force" not in argv
    resync = commands.bisync(tmp_path / "d", "s3:b/f", tmp_path / "w", resync=True)
    assert resync[resync.index("--resync-mode") + 1] == "newer"
    assert "--force" in commands.bisync(tmp_path / "d", "s3:b/f", tmp_path / "w", force=True)


def test_targeted_push_calls(tmp_path):
    listing = tmp_path / "files.txt"
    method, params = commands.copy_files(tmp_path, "s3:b/f", listing)
    # The trailing slash spares the HEAD rclone sends to check whether `f` is an object (issue 5).
    assert method == "sync/copy" and params["srcFs"] == str(tmp_path) and params["dstFs"] == "s3:b/f/"
    assert params["_filter"] == {"FilesFromRaw": [str(listing)]}
    assert params["_config"]["NoTraverse"] is True and params["_config"]["NoCheckDest"] is True
    method, params = commands.delete_files("s3:b/f", listing)
    assert method == "operations/delete" and params["fs"] == "s3:b/f/" and params["_config"] == {"NoTraverse": True}
    method, params = commands.stat_files("s3:b/f", listing)
    assert method == "operations/list" and params["fs"] == "s3:b/f/" and params["opt"]["recurse"] is True
    assert commands.as_folder("s3:b/f/") == "s3:b/f/" and commands.as_folder("s3:") == "s3:"
    # The rcd: a unix socket, no TCP port; no HEAD after uploads; JSON log for rclone/rcd.py.
    rcd = commands.rcd("/tmp/x/rc.sock")
    assert rcd[:3] == ("rcd", "--rc-addr", "/tmp/x/rc.sock") and "--s3-no-head" in rcd and "--use-json-log" in rcd
    # No line per file (INFO) unless asked: errors and notices only; -v and --log-level never together.
    assert rcd[rcd.index("--log-level") + 1] == "NOTICE" and "-v" not in rcd
    verbose = commands.rcd("/tmp/x/rc.sock", per_file=True)
    assert "-v" in verbose and "--log-level" not in verbose


def test_noise_is_excluded_everywhere(tmp_path):
    for argv in (commands.restore("s3:b", tmp_path), commands.bisync(tmp_path, "s3:b", tmp_path)):
        excludes = [argv[i + 1] for i, a in enumerate(argv) if a == "--exclude"]
        assert ".~*" in excludes and ".ipynb_checkpoints/**" in excludes and "/welcome.txt" in excludes


@pytest.mark.parametrize("rel, noise", [
    (".~notebook.ipynb", True), ("a/.~b.ipynb", True), (".ipynb_checkpoints/x-checkpoint.ipynb", True),
    ("a/.ipynb_checkpoints/x.ipynb", True), ("notes.txt.swp", True), ("welcome.txt", True),
    ("sub/welcome.txt", False), ("notebook.ipynb", False), ("data/~tilde.csv", False),
])
def test_filters(rel, noise):
    assert is_noise(rel) is noise


# -- debouncer (fake clock) ------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_debounce_waits_for_a_quiet_period():
    clock = FakeClock()
    d = Debouncer(quiet=1.0, max_delay=10.0, clock=clock)
    assert d.due_at() is None and not d.is_due()
    d.note()
    clock.now += 0.5
    d.note()  # the burst goes on: the quiet period restarts
    clock.now += 0.9
    assert not d.is_due()
    clock.now += 0.1
    assert d.is_due()
    d.reset()
    assert d.due_at() is None


def test_debounce_max_delay_bounds_a_never_ending_burst():
    clock = FakeClock()
    d = Debouncer(quiet=1.0, max_delay=3.0, clock=clock)
    d.note()
    for _ in range(5):  # a write every 0.7 s: never quiet
        clock.now += 0.7
        d.note()
    assert clock.now - 100.0 == pytest.approx(3.5)
    assert d.is_due()  # due at 103.0, the max delay


def test_changeset_keeps_failed_paths_pending():
    c = ChangeSet()
    c.add("a")
    c.add("b")
    batch = c.take()
    assert batch.paths == {"a", "b"}
    c.add("c")
    assert c.pending() == {"a", "b", "c"}  # in flight still counts as pending
    c.put_back()
    assert c.take().paths == {"a", "b", "c"}
    c.done()
    assert c.pending() == set() and not c.has_queued()


# -- rclone output -----------------------------------------------------------------------------------------------

def test_bisync_report_reads_deltas_and_guards():
    r = BisyncReport()
    r.feed("- Path1             File was deleted                            - d/q.txt")
    r.feed("- Path1             File changed: size (larger), time (newer)   - a - b.txt")
    r.feed("- Path2             File is new                                 - n.txt")
    r.feed('Safety abort: too many deletes (>50%, 2 of 3) on Path1 "loc/". Run with --force if desired.')
    assert r.paths("Path1", "deleted") == ["d/q.txt"]
    assert r.paths("Path1", "changed") == ["a - b.txt"]
    assert r.paths("Path2", "new") == ["n.txt"]
    assert r.guard_on("Path1", "too many deletes") and not r.guard_on("Path2")
    e = BisyncReport()
    e.feed("Empty current Path2 listing. Cannot sync to an empty directory: x.path2.lst-new")
    assert e.needs_resync and e.empty_side == {"Path2"}


def test_listing_parser_keeps_nanoseconds_and_quoted_names():
    text = ('# bisync listing v1 from 2026-11-25T20:58:45.698461512+0000\n'
            '-        8 - - 2026-11-25T20:58:42.443786562+0000 "a.txt"\n'
            '-        6 - - 2026-11-25T20:58:43.000000001+0000 "dir/with \\"quote\\".ipynb"\n')
    known = parse_listing(text)
    assert known["a.txt"] == (8, stamp_ns("2026-11-25T20:58:42.443786562Z"))
    assert known['dir/with "quote".ipynb'][1] % 1_000_000_000 == 1


@pytest.mark.parametrize("code, text, retryable", [
    (1, "api error InvalidAccessKeyId: The Access Key Id you provided does not exist", False),
    (1, "api error SignatureDoesNotMatch", False),
    (3, "directory not found", False),
    (5, "temporary error", True),
    (1, "dial tcp 127.0.0.1:9000: connect: connection refused", True),
    (1, "something unexpected", True),
])
def test_classify(code, text, retryable):
    assert classify(code, text)[0] is retryable


def test_secret_mask_masks_longest_first():
    mask = SecretMask()
    mask.add("abc123", "abc123XYZ")
    assert mask.mask("key=abc123XYZ and abc123") == "key=***** and *****"


def test_an_event_path_is_made_relative_by_the_observer_s_own_prefix_or_else_by_relpath():
    from rclone_jupyter.local.watcher import relative

    root = Path("/root/data")
    prefix = "/root/data/"
    assert relative(root, "/root/data/nb/a.ipynb", prefix) == "nb/a.ipynb"
    assert relative(root, b"/root/data/caf\xe9.txt", prefix) == os.fsdecode(b"caf\xe9.txt")
    assert relative(root, "/root/data", prefix) is None  # the root itself
    assert relative(root, "/root/database/x", prefix) is None  # a sibling whose name starts the same: outside
    assert relative(root, "/root/other/x", prefix) is None
    assert relative(root, "/root/data/../data/b.txt") == "b.txt"  # no prefix: relpath, as before


def test_the_polling_fallback_waits_longer_after_a_scan_that_would_take_more_than_its_share_of_a_core():
    from rclone_jupyter.local.watcher import POLL_SHARE, poll_wait

    assert poll_wait(5.0, 0.01) == 5.0  # a small tree: the interval
    assert poll_wait(5.0, 0.7) == 0.7 / POLL_SHARE  # 20,000 folders: 35 s, so at most 2% of a core
    assert poll_wait(5.0, 0.7) * POLL_SHARE == pytest.approx(0.7)
