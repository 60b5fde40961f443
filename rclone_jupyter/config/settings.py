"""Read the environment once into a frozen Settings; report every problem at once, naming its variable.

Knows nothing about rclone: providers in `remotes/` parse their own variables.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

from rclone_jupyter.errors import ConfigError
from rclone_jupyter.config.remotes import PROVIDERS, Remote, parse_remotes
from rclone_jupyter.state import private_dir

DEFAULT_PASSWORD = "data"
PUSH_MODES = ("targeted", "bisync")
MAX_KEEP_DAYS = 3650.0  # ten years: longer is a typo (and the bucket's bill)
MAX_SECONDS = 86_400.0  # a day: any longer wait is a typo, and nan/inf would stall or spin the daemon
# A file larger than this waits until JupyterLab runs (RCLONE_JUPYTER_LARGE_FILE). Of the 412,044 code and text
# files on the machine this was chosen on (.py, .ipynb, .json, .md, .js, .ts: venvs, node_modules, notebooks),
# the median was 1.5 KiB, 99.9% were under 0.75 MB and 9 over 8 MiB; on SaladCloud's 10th-percentile download
# (150 Mbps) an 8 MiB file takes 0.45 s. Checkpoints, models and data sets are larger: they are what the user can
# wait for.
LARGE_FILE = 8 * 1024 * 1024
SIZE = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[KMGT]?)(?:i?B)?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
# Never a data folder: syncing them would upload the system, or (/proc, /sys, /dev) make no sense at all.
SYSTEM_FOLDERS = ("/", "/bin", "/boot", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
                  "/opt", "/root", "/run", "/sbin", "/srv", "/tmp", "/usr", "/var", "/var/tmp")
# ... nor anything under these.
SYSTEM_TREES = ("/proc", "/sys", "/dev", "/boot", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/usr/bin",
                "/usr/sbin", "/usr/lib", "/run")
OWN_VARIABLES = ("JUPYTERLAB_PW", "JUPYTERLAB_PORT", "RCLONE_JUPYTER_DATA_DIR", "RCLONE_JUPYTER_STATE_DIR",
                 "RCLONE_JUPYTER_EXAMPLES_DIR")


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
class Keep:
    """How long the versions the sync replaces are kept in the bucket folder's trash (model/trash.py)."""

    days: float = 7.0  # a kept version is removed by the reconcile after this many days; 0: nothing is kept
    every: float = 600.0  # seconds: at most one overwritten version kept per file in this time (deletes: all)

    @property
    def on(self) -> bool:
        return self.days > 0


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
    login_lockout: float = 60.0  # the longest delay of a failed JupyterLab login's answer (jupyterlab/login.py)
    keep: Keep = Keep()
    # RCLONE_JUPYTER_BWLIMIT, as rclone's --bwlimit takes it (`4M`, `4M:off`, a timetable); None: no limit.
    # Its grammar is rclone's: rclone/runner.check_bwlimit asks rclone itself before anything starts.
    bwlimit: str | None = None
    # Files larger than this many bytes are restored after JupyterLab has started (engine/background.py).
    large_file: int = LARGE_FILE

    @property
    def persistent(self) -> bool:
        return bool(self.remotes)

    def secrets(self) -> tuple[str, ...]:
        """Every value that must never be shown: the password and each remote's secrets."""
        values = [self.password] if not self.password_is_default else []
        for remote in self.remotes:
            values.extend(remote.secrets)
        return tuple(v for v in values if v)


def _number(env: Mapping[str, str], name: str, default: float, problems: list[str], *, minimum: float = 0.0,
            maximum: float = MAX_SECONDS, unit: str = "seconds") -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a number of {unit}.")
        return default
    if not math.isfinite(value) or not minimum <= value <= maximum:
        # nan compares false with everything: check it explicitly, or it slips through any range check.
        problems.append(f"{name}: must be a number of {unit} from {minimum:g} to {maximum:g}, got {raw}.")
        return default
    return value


def _size(env: Mapping[str, str], name: str, default: int, problems: list[str]) -> int:
    """A size in bytes: `8M`, `512K`, `1.5G`, `8MiB` or a plain number of bytes (binary units, as rclone's)."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    match = SIZE.fullmatch(raw)
    if not match:
        problems.append(f"{name}: {raw!r} is not a size; write it as 8M, 512K, 1G or a number of bytes.")
        return default
    return int(float(match["number"]) * SIZE_UNITS[match["unit"].upper()])


def _not_utf8(env: Mapping[str, str], problems: list[str]) -> set[str]:
    """Name every variable of ours that is not valid UTF-8 (Python keeps such bytes as surrogates, and they
    fail much later: hashing the password, writing the rclone config). The value is never shown."""
    names = set(OWN_VARIABLES) | {n for p in PROVIDERS for n in p.VARIABLES}
    names |= {n for n in env if n.startswith("RCLONE_JUPYTER_")}
    bad = set()
    for name in sorted(names):
        try:
            env.get(name, "").encode("utf-8")
        except UnicodeEncodeError:
            bad.add(name)
            problems.append(f"{name} is not valid UTF-8 text (the value is not shown); set it again as plain text.")
    return bad


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path != path.parent:
        path = path.parent
    return path


def _check_folder(name: str, path: Path, problems: list[str]) -> bool:
    """A folder we will create or write into: it, or the nearest thing that exists above it, must be a
    writable directory. Return False after adding a problem."""
    existing = _nearest_existing(path)
    if not existing.is_dir():
        what = "exists and is not a directory" if existing == path else f"is under {existing}, which is not a directory"
        problems.append(f"{name}: {path} {what}; choose a directory.")
        return False
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == path else f" (its nearest existing parent {existing} is not writable)"
        problems.append(f"{name}: {path} is read-only{where}; choose a writable directory (a read-only mount "
                        "cannot be restored into).")
        return False
    return True


def _check_data_dir(data: Path, problems: list[str]) -> None:
    text = str(data)
    if text in SYSTEM_FOLDERS or any(text == t or text.startswith(t + "/") for t in SYSTEM_TREES):
        problems.append(f"RCLONE_JUPYTER_DATA_DIR: {data} is a system folder; its content would be synced to the "
                        "bucket. Use a folder of its own, e.g. /root/data.")
        return
    _check_folder("RCLONE_JUPYTER_DATA_DIR", data, problems)


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
    """The state dir the environment names (RCLONE_JUPYTER_STATE_DIR), else the default one: resolved, and a
    private subfolder of a shared directory (state.private_dir). `start`, `status` and JupyterLab's extension
    all find it so."""
    given = Path(env.get("RCLONE_JUPYTER_STATE_DIR") or default_state_dir(env)).expanduser()
    return private_dir(Path(os.path.realpath(given)))


def load(env: Mapping[str, str] | None = None, *, data_dir: str | None = None, port: int | None = None) -> Settings:
    """Given the environment (and CLI overrides), return Settings. Raise ConfigError listing every problem."""
    env = os.environ if env is None else env
    problems: list[str] = []

    not_utf8 = _not_utf8(env, problems)
    password = env.get("JUPYTERLAB_PW", "")
    if password and password != password.strip():
        problems.append("JUPYTERLAB_PW starts or ends with blanks; remove them (they are easy to lose when typing).")
    password_is_default = not password
    password = password or DEFAULT_PASSWORD

    # Resolved (symlinks followed) before any comparison: a data folder given through a symlink must not
    # hide that the state dir (with the rclone config and its secrets) is inside it.
    data = Path(os.path.realpath(Path(data_dir or env.get("RCLONE_JUPYTER_DATA_DIR") or "/root/data").expanduser()))
    state = state_dir_from(env)
    if state == data or data in state.parents:
        problems.append(
            f"RCLONE_JUPYTER_STATE_DIR: {state} is inside the data folder {data}; the private state (rclone config, "
            "sync listings) must live outside it. Choose another directory."
        )
    if "RCLONE_JUPYTER_DATA_DIR" not in not_utf8:
        _check_data_dir(data, problems)
    if "RCLONE_JUPYTER_STATE_DIR" not in not_utf8:
        _check_folder("RCLONE_JUPYTER_STATE_DIR", state, problems)

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

    login_lockout = _number(env, "RCLONE_JUPYTER_LOGIN_LOCKOUT", Settings.login_lockout, problems, minimum=1)
    keep = Keep(days=_number(env, "RCLONE_JUPYTER_KEEP_DAYS", Keep.days, problems, maximum=MAX_KEEP_DAYS, unit="days"),
                every=_number(env, "RCLONE_JUPYTER_KEEP_EVERY", Keep.every, problems))
    bwlimit = env.get("RCLONE_JUPYTER_BWLIMIT", "").strip() or None
    large_file = _size(env, "RCLONE_JUPYTER_LARGE_FILE", LARGE_FILE, problems)
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
        login_lockout=login_lockout,
        keep=keep,
        bwlimit=bwlimit,
        large_file=large_file,
    )
