"""The JupyterLab extension as a user gets it: inside the wheel, where JupyterLab finds it, enabled."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from conftest import ROOT, VENV_BIN, clean_env

LABEXTENSION = "share/jupyter/labextensions/rclone-jupyter"
SERVER_CONFIG = "etc/jupyter/jupyter_server_config.d/rclone_jupyter.json"


def test_pip_install_of_the_wheel_is_all_jupyterlab_needs(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(ROOT)], check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("rclone_jupyter-*.whl")
    data = "rclone_jupyter-0.1.0.data/data/"
    names = set(zipfile.ZipFile(wheel).namelist())
    assert f"{data}{LABEXTENSION}/package.json" in names
    assert any(n.startswith(f"{data}{LABEXTENSION}/static/remoteEntry.") for n in names)
    assert f"{data}{SERVER_CONFIG}" in names

    prefix = tmp_path / "prefix"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--prefix", str(prefix),
                    "--ignore-installed",  # else pip would first uninstall the development install of this venv
                    str(wheel)], check=True, capture_output=True)
    config = json.loads((prefix / SERVER_CONFIG).read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"rclone_jupyter.jupyterlab.extension": True}}}
    # JupyterLab's own listing, in the section of the folder the wheel installed into (the development venv
    # has a link of its own, elsewhere). The server side's config file is checked above: `jupyter server
    # extension list` reads only fixed folders; tests/end-to-end/test_images.py runs it as the image does.
    env = clean_env(HOME=str(tmp_path / "home"), JUPYTER_PATH=str(prefix / "share/jupyter"),
                    JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_DATA_DIR=str(tmp_path / "data"))
    labs = subprocess.run([str(VENV_BIN / "jupyter"), "labextension", "list"], env=env, capture_output=True,
                          text=True, timeout=60)
    section = listed_under(labs.stdout + labs.stderr, str(prefix / "share/jupyter/labextensions"))
    assert any("rclone-jupyter v0.1.0" in line and "enabled" in line and "OK" in line for line in section), section


def listed_under(listing: str, folder: str) -> list[str]:
    """The indented lines under the line naming `folder` in a `jupyter labextension list` output."""
    lines = listing.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == folder]
    assert starts, f"{folder} is not listed:\n{listing}"
    section = []
    for line in lines[starts[0] + 1:]:
        if not line.startswith((" ", "\t")):
            break
        section.append(line)
    return section
