"""The pure parts of `history` and `recover` (undo.py): how a typed path becomes a data folder path."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import ROOT
from rclone_jupyter.config.settings import Keep
from rclone_jupyter.undo import data_path

DATA = Path("/root/data")


def test_a_relative_path_from_outside_the_data_folder_is_relative_to_it():
    assert data_path(DATA, "project/a.txt", cwd="/tmp") == "project/a.txt"


def test_a_relative_path_from_inside_the_data_folder_is_relative_to_the_current_folder():
    assert data_path(DATA, "a.txt", cwd="/root/data/project") == "project/a.txt"
    assert data_path(DATA, "../b.txt", cwd="/root/data/project") == "b.txt"


def test_an_absolute_path_inside_the_data_folder_is_taken_as_it_is():
    assert data_path(DATA, "/root/data/project/", cwd="/tmp") == "project"


def test_no_path_is_the_current_folder_inside_the_data_folder_else_all_of_it():
    assert data_path(DATA, "", cwd="/root/data/project") == "project"
    assert data_path(DATA, "", cwd="/tmp") == ""
    assert data_path(DATA, "", cwd="/root/data") == ""


@pytest.mark.parametrize("given, cwd", [("/etc/passwd", "/tmp"), ("/root/database", "/tmp"),
                                        ("../../etc", "/root/data/project")])
def test_a_path_outside_the_data_folder_is_refused(given, cwd):
    with pytest.raises(ValueError, match="not inside the data folder"):
        data_path(DATA, given, cwd=cwd)


def test_rclone_jupyters_own_folder_is_refused():
    with pytest.raises(ValueError, match="own folder"):
        data_path(DATA, ".rclone-jupyter/trash", cwd="/tmp")


def test_the_versioning_lifecycle_rule_keeps_as_long_as_the_trash_and_only_in_the_folder():
    import json

    text = (ROOT / "provisioning" / "aws-versioning-lifecycle.json").read_text()
    (rule,) = json.loads(text.replace("<FOLDER>", "jupyterlab/alice"))["Rules"]
    assert rule["Filter"] == {"Prefix": "jupyterlab/alice/"} and rule["Status"] == "Enabled"
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == Keep.days
