"""The CLI surface: every command documented with an example; packaging ships the templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from click.testing import CliRunner

from conftest import ROOT
from rclone_jupyter.cli import cli


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    for name, command in cli.commands.items():
        result = runner.invoke(cli, [name, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, name
        assert command.help and "Example" in command.help, name
        assert name in (ROOT / "README.md").read_text(), f"{name} is not in the README"


def test_status_without_a_running_start(tmp_path):
    result = CliRunner().invoke(cli, ["status", "--json"], env={"RCLONE_JUPYTER_STATE_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert '"running": false' in result.output and '"last_sync": null' in result.output


def test_sync_once_without_a_bucket_is_a_clear_error(tmp_path):
    result = subprocess.run([str(Path(sys.executable).parent / "rclone-jupyter"), "sync", "--once"],
                            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert result.returncode == 2
    assert "no bucket is configured" in result.stderr and "Traceback" not in result.stderr


def test_rclone_binary_override_must_exist(tmp_path):
    from rclone_jupyter.errors import RcloneNotFound
    from rclone_jupyter.rclone.runner import find_binary

    try:
        find_binary({"RCLONE_BINARY": str(tmp_path / "nope")})
    except RcloneNotFound as exc:
        assert "RCLONE_BINARY" in str(exc)
    else:
        raise AssertionError("a missing RCLONE_BINARY was accepted")
    assert find_binary({}).endswith("rclone")


def test_the_wheel_ships_the_templates(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("rclone_jupyter-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for template in (ROOT / "rclone_conf_templates").glob("*.conf"):
        assert f"rclone_jupyter/rclone_conf_templates/{template.name}" in names
