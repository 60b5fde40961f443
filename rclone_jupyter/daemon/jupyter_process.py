"""The JupyterLab command and its private config (the password hash stays off the command line)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from rclone_jupyter.children import spawner
from rclone_jupyter.config.settings import Settings
from rclone_jupyter.state import StateDir, write_private


def hashed_password(password: str) -> str:
    from jupyter_server.auth import passwd

    return passwd(password)


def server_config(settings: Settings, password_hash: str) -> dict:
    """Given Settings, return JupyterLab's config: the seed's contract (port, root dir, password, deletes)."""
    return {
        "ServerApp": {
            # '' binds every address of every family: 0.0.0.0 and '::' (SaladCloud's gateway speaks IPv6).
            "ip": "",
            "port": settings.port,
            "port_retries": 0,  # the port is a contract with the gateway and the health check: never drift
            "open_browser": False,
            "allow_remote_access": True,  # the gateway's host name is not local
            "root_dir": str(settings.data_dir),
            "allow_root": os.geteuid() == 0,
            # The sync status item and panel (jupyterlab/extension.py); on even if the package's
            # jupyter_server_config.d file was not installed (an editable install).
            "jpserver_extensions": {"rclone_jupyter.jupyterlab.extension": True},
            "tornado_settings": {"rclone_jupyter_login": {"max_delay": settings.login_lockout}},
        },
        "IdentityProvider": {"token": ""},
        "PasswordIdentityProvider": {
            "hashed_password": password_hash,
            "password_required": True,
            # The login page is public: failed logins are throttled per client address (jupyterlab/login.py).
            "login_handler_class": "rclone_jupyter.jupyterlab.login.ThrottledLoginHandler",
        },
        "FileContentsManager": {
            # Deleted files must really go, so the delete reaches the bucket (no hidden trash to sync).
            "delete_to_trash": False,
            "always_delete_dir": True,
        },
    }


def write_config(state: StateDir, settings: Settings) -> Path:
    path = state.path / "jupyter_server_config.json"
    write_private(path, json.dumps(server_config(settings, hashed_password(settings.password)), indent=2))
    return path


def command(config_path: Path) -> list[str]:
    """The argv that starts JupyterLab with the given config file (no secret in it)."""
    return [sys.executable, "-m", "jupyterlab", f"--config={config_path}"]


def environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """JupyterLab's (and its kernels') environment: ours, without the password, plus provider fixes."""
    env = {k: v for k, v in base.items() if k != "JUPYTERLAB_PW"}
    env.update(extra)
    return env


class JupyterLab:
    """The JupyterLab child: in its own session (a Ctrl-C in the terminal reaches us only; we stop it in
    order), and dying with us (children.py): a daemon killed with SIGKILL leaves no JupyterLab holding the port."""

    def __init__(self, argv: list[str], *, cwd: Path, env: Mapping[str, str]):
        self._proc = spawner.popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self._proc.pid

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self, timeout: float | None = None) -> int:
        return self._proc.wait(timeout)

    def terminate(self) -> None:
        """SIGTERM to its whole process group (its kernels and terminals too)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            pass
