"""The one retry setup for rclone calls (tenacity): transient failures are retried with exponential backoff,
bounded by attempts and time; refused credentials and missing buckets fail at once (RcloneError.retryable)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay, wait_exponential

from rclone_jupyter.errors import RcloneError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    max_seconds: float = 60.0
    first_wait: float = 0.5
    max_wait: float = 8.0


# While `start` runs, the syncer owns retries (its backoff keeps changes pending and shows them in the status):
# a call there makes one attempt. The start phases (restore, establish) have no syncer: they retry.
ONE_ATTEMPT = RetryPolicy(attempts=1)


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, RcloneError) and exc.retryable


def retrying(fn: Callable[[], T], what: str, policy: RetryPolicy, *, quiet: bool = False) -> T:
    """Call fn(); retry transient rclone failures as `policy` says. `quiet`: no log line per retry."""

    def before_sleep(state) -> None:
        if not quiet:
            log.warning("%s: attempt %d failed (%s); retrying in %.1f s",
                        what, state.attempt_number, state.outcome.exception(), state.next_action.sleep)

    for attempt in Retrying(
        retry=retry_if_exception(_is_retryable),
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.max_seconds),
        wait=wait_exponential(multiplier=policy.first_wait, max=policy.max_wait),
        before_sleep=before_sleep,
        reraise=True,
    ):
        with attempt:
            return fn()
    raise AssertionError("unreachable: tenacity reraises")
