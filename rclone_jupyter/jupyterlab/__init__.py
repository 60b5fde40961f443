"""What runs inside JupyterLab's own process: the sync status server extension and the login throttle.

Only Jupyter's discovery hooks live here; the extension itself is `extension.py`, its settings `config.py`.
"""


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "rclone_jupyter.jupyterlab.extension"}]


def _jupyter_labextension_paths() -> list[dict]:
    # The built frontend (labextension/build.sh writes it; the wheel installs it as data files).
    return [{"src": "../labextension", "dest": "rclone-jupyter"}]
