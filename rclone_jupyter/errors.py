"""Typed errors raised by the core modules; the CLI turns each into a clear message and an exit code."""

from __future__ import annotations


class RcloneJupyterError(Exception):
    """Base class: the message is meant for the user, and never contains a secret."""

    exit_code = 1


class ConfigError(RcloneJupyterError):
    """The environment or the options are wrong. Carries every problem found, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("\n".join(f"  - {p}" for p in self.problems))


class RcloneNotFound(RcloneJupyterError):
    exit_code = 2


class RcloneError(RcloneJupyterError):
    """An rclone run failed.

    `retryable` says whether trying again later may help (network, throttling, rclone exit 5),
    as opposed to problems a human has to fix (credentials, a missing bucket, bad flags).
    """

    def __init__(self, message: str, *, exit_code: int | None, retryable: bool, output_tail: str = ""):
        super().__init__(message)
        self.rclone_exit_code = exit_code
        self.retryable = retryable
        self.output_tail = output_tail


class PersistenceError(RcloneJupyterError):
    """Persistence was asked for but does not work (DESIGN invariant 8): stop rather than risk the user's work."""

    exit_code = 3


class DaemonNotRunning(RcloneJupyterError):
    """A command that needs the running `start` found none."""

    exit_code = 1
