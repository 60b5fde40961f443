"""RCLONE_JUPYTER_LARGE_FILE (config/settings.py): the size over which a file is restored after JupyterLab.

That the daemon uses it is tested in tests/integration/test_start_link.py, whose daemons run with 1 MiB.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rclone_jupyter.config import settings
from rclone_jupyter.errors import ConfigError


def load(tmp_path: Path, **env: str) -> settings.Settings:
    return settings.load({"RCLONE_JUPYTER_STATE_DIR": str(tmp_path / "state"),
                          "RCLONE_JUPYTER_DATA_DIR": str(tmp_path / "data"), "RCLONE_JUPYTER_EXAMPLES_DIR": "", **env})


def test_the_default_is_8_mib(tmp_path):
    assert load(tmp_path).large_file == 8 * 1024 * 1024 == settings.LARGE_FILE


@pytest.mark.parametrize(("value", "size"), [
    ("8M", 8 << 20), ("512K", 512 << 10), ("1.5G", 3 << 29), ("8MiB", 8 << 20), ("64kb", 64 << 10),
    ("1048576", 1 << 20), ("100B", 100), ("0", 0), (" 2 M ", 2 << 20),
])
def test_sizes_are_read_in_binary_units_or_bytes(tmp_path, value, size):
    assert load(tmp_path, RCLONE_JUPYTER_LARGE_FILE=value).large_file == size


@pytest.mark.parametrize("value", ["big", "-1", "8X", "nan", "inf", "1e6", "8 MB MB", "M"])
def test_a_bad_size_names_the_variable_and_the_way_to_write_it(tmp_path, value):
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, RCLONE_JUPYTER_LARGE_FILE=value, RCLONE_JUPYTER_KEEP_DAYS="x")
    text = str(caught.value)
    assert "RCLONE_JUPYTER_LARGE_FILE" in text and "8M, 512K, 1G or a number of bytes" in text
    assert "RCLONE_JUPYTER_KEEP_DAYS" in text  # reported with the other problems, at once
