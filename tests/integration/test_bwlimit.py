"""RCLONE_JUPYTER_BWLIMIT (issue 16): rclone's --bwlimit syntax, checked by rclone itself, on every rclone run."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import CLI, RCLONE, clean_env, wait_until
from rclone_jupyter.errors import ConfigError
from rclone_jupyter.rclone import commands
from rclone_jupyter.rclone.runner import check_bwlimit


@pytest.mark.parametrize("value", ["4M", "512k:off", "1M:8M", "08:00,512k 12:00,10M 23:00,off",
                                   "Mon-00:00,512 Fri-23:59,10M", "off"])
def test_values_rclone_accepts_pass(value):
    check_bwlimit(RCLONE, value)


@pytest.mark.parametrize("value", ["fast", "1M:slow", "25:00,1M", "1M:2M:3M"])
def test_values_rclone_refuses_name_the_variable(value):
    with pytest.raises(ConfigError) as caught:
        check_bwlimit(RCLONE, value)
    message = str(caught.value)
    assert "RCLONE_JUPYTER_BWLIMIT" in message and repr(value) in message
    # Its verdict is rclone's own: the same value makes rclone exit 2.
    assert subprocess.run([RCLONE, "version", "--bwlimit", value], capture_output=True,
                          env=clean_env(RCLONE_CONFIG=os.devnull)).returncode == 2


def test_a_bad_value_stops_start_and_check_with_exit_2(s3, tmp_path):
    env = clean_env(**s3.env(), RCLONE_JUPYTER_BWLIMIT="2 MB/s", RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "data"),
                    RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path))
    for command in (["start", "--no-jupyter"], ["check"]):
        result = subprocess.run([CLI, *command], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (command, result.stderr)
        assert "RCLONE_JUPYTER_BWLIMIT" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists(), "start went on after the bad value"


def test_the_limit_reaches_every_rclone_the_daemon_runs(s3, daemons):
    """The rcd (the push path) and the runner's runs (restore, listings) both carry --bwlimit."""
    daemon = daemons({**s3.env(), "RCLONE_JUPYTER_BWLIMIT": "1M:4M"}).start()
    (daemon.data / "a.txt").write_text("hello")
    daemon.wait_synced()

    def rcd_argv():
        for pid in os.listdir("/proc"):
            try:
                if pid.isdigit() and int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1]) == \
                        daemon.proc.pid:
                    argv = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
                    if "rcd" in argv:
                        return argv
            except (OSError, ValueError):
                continue
        return None

    (daemon.data / "b.txt").write_text("again")  # the rcd may have stopped for idleness: this starts it
    argv = wait_until(rcd_argv, 20, message="the daemon's rclone rcd")
    assert argv[argv.index("--bwlimit") + 1] == "1M:4M"
    assert commands.global_flags(bwlimit="1M:4M") == ("--bwlimit", "1M:4M")
    assert commands.global_flags(bwlimit=None) == ()
    # After each command's own RETRIES on the argv: the last --low-level-retries is the one rclone takes.
    assert commands.global_flags(low_level_retries=1) == ("--low-level-retries", "1")


def test_the_runner_adds_the_flags_to_every_run(tmp_path):
    """A run with a limit rclone refuses fails as rclone's usage error: the flag reached its argv."""
    import pytest

    from rclone_jupyter.errors import RcloneError
    from rclone_jupyter.rclone.runner import Rclone

    Rclone(RCLONE, tmp_path / "none.conf", env=clean_env(), flags=commands.global_flags(bwlimit="256k")).run(
        ("version",), what="version")
    refused = Rclone(RCLONE, tmp_path / "none.conf", env=clean_env(), flags=commands.global_flags(bwlimit="fast"))
    with pytest.raises(RcloneError) as caught:
        refused.run(("version",), what="version")
    assert caught.value.rclone_exit_code == 2 and "bwlimit" in str(caught.value.output_tail)
