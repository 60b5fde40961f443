"""Where `start` points JupyterLab's settings, workspaces and bash's history: the data folder's kept folder
(daemon/user_state.py); a user's own values stay, a link is never written through."""

from __future__ import annotations

from pathlib import Path

import pytest

from rclone_jupyter.daemon import user_state

KEPT = user_state.FOLDER


def test_jupyterlab_and_bash_are_pointed_at_the_kept_folder(tmp_path):
    env = user_state.environment(tmp_path, {"PATH": "/usr/bin:/bin"})
    assert env == {
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / KEPT / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / KEPT / "workspaces"),
        "HISTFILE": str(tmp_path / KEPT / "bash_history"),
        "PROMPT_COMMAND": "history -a",
        "SHELL": env["SHELL"],
    }
    assert Path(env["SHELL"]).name == "bash"  # no SHELL: JupyterLab's terminal would run sh (dash), no history


def test_what_the_user_set_stays_theirs(tmp_path):
    mine = {"JUPYTERLAB_SETTINGS_DIR": "/elsewhere/settings", "HISTFILE": "/elsewhere/history", "SHELL": "/bin/zsh",
            "PROMPT_COMMAND": "update_title"}
    env = user_state.environment(tmp_path, mine)
    assert env == {"JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / KEPT / "workspaces"),
                   "PROMPT_COMMAND": "history -a; update_title"}
    assert "PROMPT_COMMAND" not in user_state.environment(tmp_path, {"PROMPT_COMMAND": "history -a; x"})


def test_the_folder_is_made_before_bash_appends_to_it(tmp_path):
    env = user_state.prepare(tmp_path, {})
    assert (tmp_path / KEPT).is_dir() and Path(env["HISTFILE"]).parent == tmp_path / KEPT


@pytest.mark.parametrize("link", [KEPT, f"{KEPT}/user-settings", f"{KEPT}/bash_history"])
def test_a_restored_link_is_never_written_through(tmp_path, link, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    data = tmp_path / "data"
    (data / KEPT).mkdir(parents=True)
    if link == KEPT:
        (data / KEPT).rmdir()
    (data / link).symlink_to(outside)
    assert user_state.prepare(data, {}) == {}  # nothing points through it: JupyterLab's defaults, in HOME
    assert "symbolic link" in caplog.text and link in caplog.text
    assert not list(outside.iterdir())


def test_a_file_where_the_folder_should_be_is_left_alone(tmp_path, caplog):
    (tmp_path / KEPT).write_text("the user's own file")
    assert user_state.prepare(tmp_path, {}) == {}
    assert (tmp_path / KEPT).read_text() == "the user's own file" and "not a folder" in caplog.text
