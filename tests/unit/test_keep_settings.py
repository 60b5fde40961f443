"""RCLONE_JUPYTER_KEEP_DAYS and RCLONE_JUPYTER_KEEP_EVERY (config/settings.py): defaults, values, bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from rclone_jupyter.config import settings
from rclone_jupyter.errors import ConfigError


def load(tmp_path: Path, **env: str) -> settings.Settings:
    return settings.load({"RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"),
                          "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data"), "RCLONE_JUPYTER_EXAMPLES_DIR": "", **env})


def problems(tmp_path: Path, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **env)
    return str(caught.value)


def test_defaults_keep_seven_days_and_one_overwrite_per_ten_minutes(tmp_path):
    keep = load(tmp_path).keep
    assert (keep.days, keep.every, keep.on) == (7.0, 600.0, True)


def test_values_are_read(tmp_path):
    keep = load(tmp_path, RCLONE_JUPYTER_KEEP_DAYS="30", RCLONE_JUPYTER_KEEP_EVERY="60").keep
    assert (keep.days, keep.every) == (30.0, 60.0)


def test_keep_days_zero_turns_keeping_off(tmp_path):
    assert not load(tmp_path, RCLONE_JUPYTER_KEEP_DAYS="0").keep.on


@pytest.mark.parametrize("value", ["seven", "-1", "nan", "inf", "1e9", "7d"])
def test_a_bad_keep_days_names_the_variable(tmp_path, value):
    text = problems(tmp_path, RCLONE_JUPYTER_KEEP_DAYS=value)
    assert "RCLONE_JUPYTER_KEEP_DAYS" in text and "days" in text


@pytest.mark.parametrize("value", ["10m", "-5", "nan", "1e12"])
def test_a_bad_keep_every_names_the_variable(tmp_path, value):
    text = problems(tmp_path, RCLONE_JUPYTER_KEEP_EVERY=value)
    assert "RCLONE_JUPYTER_KEEP_EVERY" in text and "seconds" in text


def test_both_bad_are_reported_at_once(tmp_path):
    text = problems(tmp_path, RCLONE_JUPYTER_KEEP_DAYS="x", RCLONE_JUPYTER_KEEP_EVERY="y")
    assert "RCLONE_JUPYTER_KEEP_DAYS" in text and "RCLONE_JUPYTER_KEEP_EVERY" in text
