"""Read the environment once into a frozen Settings; report every problem at once, naming its variable.

Knows nothing about rclone: providers in `remotes/` parse their own variables.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from rclone_jupyter.errors import ConfigError
from rclone_jupyter.remotes import Remote, parse_remotes

DEFAULT_PASSWORD = "data"
PUSH_MODES = ("targeted", "bisync")


@dataclasses.dataclass(frozen=True)
class Timing:
    """How the sync reacts to changes, in seconds."""

    quiet_period: float = 1.0  # a burst of writes closer together than this is one sync
    max_delay: float = 10.0  # a file that never stops changing is still saved this often
    flush_deadline: float = 25.0  # at shutdown, how long pending changes may take to land
    reconcile_interval: float = 300.0  # full bisync with the bucket; 0 disables the periodic one
    retry_interval: float = 5.0  # first wait before a failed sync is tried again (doubles, max 60 s)
    poll_interval: float = 5.0  # folder scans when inotify cannot watch the whole tree (watcher fallback)
    # Refresh of this node's presence object in the bucket folder (1 PUT + 1 LIST); 0: off. As long as the
    # reconcile interval by default, so an idle container costs no more requests than its reconciles.
    heartbeat_interval: float = 300.0


@dataclasses.dataclass(frozen=True)
class Settings:
    password: str
    password_is_default: bool
    data_dir: Path
    state_dir: Path
    port: int
    remotes: tuple[Remote, ...]
    timing: Timing
    push_mode: str
    examples_dir: Path | None
    log_level: str
    watch_limit: int | None = None  # folders inotify may watch before the polling fallback; None: the kernel's

    @property
    def persistent(self) -> bool:
        return bool(self.remotes)

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be shown: the password and each remote's secrets."""
        values = [self.password] if not self.password_is_default else []
        for remote in self.remotes:
            values.extend(remote.secrets)
        return tuple(v for v in values if v)


def _number(env: Mapping[str, str], name: str, default: float, problems: list[str], *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a number of seconds.")
        return default
    if value < minimum:
        problems.append(f"{name}: must be at least {minimum:g} seconds, got {raw}.")
        return default
    return value


def _port(value: str | int, name: str, problems: list[str]) -> int:
    try:
        port = int(value)
    except (TypeError, ValueError):
        problems.append(f"{name}: {value!r} is not a port number.")
        return 0
    if not 1 <= port <= 65535:
        problems.append(f"{name}: {port} is not a port number between 1 and 65535.")
    return port


def default_state_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(base) / "rclone-jupyter"


def state_dir_from(env: Mapping[str, str]) -> Path:
    """The state dir the environment names (RCLONE_JUPYTER_STATE_DIR), else the default one, as an absolute path."""
    return Path(os.path.abspath(Path(env.get("RCLONE_JUPYTER_STATE_DIR") or default_state_dir(env)).expanduser()))


def load(env: Mapping[str, str] | None = None, *, data_dir: str | None = None, port: int | None = None) -> Settings:
    """Given the environment (and CLI overrides), return Settings. Raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []

    password = env.get("JUPYTERLAB_PW", "")
    if password and password != password.strip():
        problems.append("JUPYTERLAB_PW starts or ends with blanks; remove them (they are easy to lose when typing).")
    password_is_default = not password
    password = password or DEFAULT_PASSWORD

    data = Path(data_dir or env.get("RCLONE_JUPYTER_DATA_DIR") or "/root/data").expanduser()
    data = Path(os.path.abspath(data))
    state = state_dir_from(env)
    if state == data or data in state.parents:
        problems.append(
            f"RCLONE_JUPYTER_STATE_DIR: {state} is inside the data folder {data}; the private state (rclone config, "
            "sync listings) must live outside it. Choose another directory."
        )
    if data.exists() and not data.is_dir():
        problems.append(f"RCLONE_JUPYTER_DATA_DIR: {data} exists and is not a directory.")

    port_value = _port(port if port is not None else (env.get("JUPYTERLAB_PORT") or 8000), "JUPYTERLAB_PORT", problems)

    timing = Timing(
        quiet_period=_number(env, "RCLONE_JUPYTER_QUIET_PERIOD", Timing.quiet_period, problems, minimum=0.05),
        max_delay=_number(env, "RCLONE_JUPYTER_MAX_DELAY", Timing.max_delay, problems, minimum=0.1),
        flush_deadline=_number(env, "RCLONE_JUPYTER_FLUSH_DEADLINE", Timing.flush_deadline, problems, minimum=1),
        reconcile_interval=_number(env, "RCLONE_JUPYTER_RECONCILE_INTERVAL", Timing.reconcile_interval, problems),
        retry_interval=_number(env, "RCLONE_JUPYTER_RETRY_INTERVAL", Timing.retry_interval, problems, minimum=0.1),
        poll_interval=_number(env, "RCLONE_JUPYTER_POLL_INTERVAL", Timing.poll_interval, problems, minimum=0.1),
        heartbeat_interval=_number(env, "RCLONE_JUPYTER_HEARTBEAT_INTERVAL", Timing.heartbeat_interval, problems),
    )
    if timing.max_delay < timing.quiet_period:
        problems.append(
            f"RCLONE_JUPYTER_MAX_DELAY ({timing.max_delay:g}) must not be shorter than "
            f"RCLONE_JUPYTER_QUIET_PERIOD ({timing.quiet_period:g})."
        )

    push_mode = env.get("RCLONE_JUPYTER_PUSH_MODE", "targeted").strip() or "targeted"
    if push_mode not in PUSH_MODES:
        problems.append(f"RCLONE_JUPYTER_PUSH_MODE: {push_mode!r} is not one of {', '.join(PUSH_MODES)}.")

    log_level = (env.get("RCLONE_JUPYTER_LOG_LEVEL") or "INFO").strip().upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"RCLONE_JUPYTER_LOG_LEVEL: {log_level!r} is not one of DEBUG, INFO, WARNING, ERROR.")

    examples = env.get("RCLONE_JUPYTER_EXAMPLES_DIR", "/opt/rclone-jupyter/examples")
    examples_dir = Path(examples) if examples and Path(examples).is_dir() else None

    watch_limit = None
    raw_limit = env.get("RCLONE_JUPYTER_WATCH_LIMIT", "").strip()
    if raw_limit:
        if raw_limit.isdigit() and int(raw_limit) >= 1:
            watch_limit = int(raw_limit)
        else:
            problems.append(f"RCLONE_JUPYTER_WATCH_LIMIT: {raw_limit!r} is not a whole number of folders "
                            "(1 or more).")

    remotes = parse_remotes(env, problems)
    if problems:
        raise ConfigError(problems)
    return Settings(
        password=password,
        password_is_default=password_is_default,
        data_dir=data,
        state_dir=state,
        port=port_value,
        remotes=remotes,
        timing=timing,
        push_mode=push_mode,
        examples_dir=examples_dir,
        log_level=log_level,
        watch_limit=watch_limit,
    )
