"""An object the storage refuses (an HTTP 403 on that one object: a bucket policy on a prefix, an ACL, a KMS key
the container may not use): told apart from an outage, narrowed down to the names refused, and said plainly.

A batch request (a download, a check of many names) fails whole for one such object; the names are then tried
one at a time, so that one refused object never stops the others (issue 18, item 6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rclone_jupyter.engine.store import Store
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.logs import secret_mask
from rclone_jupyter.model.filters import HEARTBEATS

# Tried alone, all refused, nothing else fetched: the rest are taken as refused too, without a request each (a
# policy on a whole folder).
ONE_BY_ONE = 3
_DENIED = ("AccessDenied", "Access Denied", "StatusCode: 403", "status code 403", "Error 403", "403 Forbidden")


def denied(exc: RcloneError) -> bool:
    """The storage said no to this request (HTTP 403), not that it is down."""
    return any(marker in str(exc) for marker in _DENIED)


def one_object_refused(exc: RcloneError, store: Store) -> bool:
    """A failure for good that is a 403 on some object while the credentials still work: worth narrowing down.
    Revoked or mistyped credentials get a 403 on every request, and a HEAD's 403 carries no code to tell them
    apart, so a LIST of the heartbeats' folder (a few objects, readable with any key that may sync) decides."""
    if exc.retryable or not denied(exc):
        return False
    try:
        store.list(HEARTBEATS)
    except RcloneError as probe:
        if probe.retryable:
            raise
        return False
    return True


def refusal(exc: RcloneError) -> str:
    """Why the storage refused one object, as the status shows it."""
    if denied(exc):
        return "access denied (a bucket policy, an ACL or an encryption key this container may not use)"
    return secret_mask.mask(str(exc))[:300]  # masked before it is cut: no half secret is left to show


def narrow_down(exc: RcloneError, store: Store, names: Iterable[str], attempt: Callable[[str], None],
                refused: Callable[[dict[str, str]], None] | None, *, take_the_rest: bool = False) -> None:
    """A batch request failed with `exc`. Unless that is a refusal of some of its objects (one_object_refused)
    and `refused` wants them, `exc` is raised again; else each of `names` is tried alone (`one_by_one`) and
    those refused are told to `refused` ({name: why})."""
    if refused is None or not one_object_refused(exc, store):
        raise exc
    found = one_by_one(names, attempt, take_the_rest=take_the_rest)
    if found:
        refused(found)


def one_by_one(names: Iterable[str], attempt: Callable[[str], None], *, take_the_rest: bool = False) -> dict[str, str]:
    """Run `attempt` for each name alone; return {name: why} for those refused for good. A retryable failure (the
    storage down) is raised: that is no refusal. `take_the_rest`: once the first ONE_BY_ONE were all refused,
    the rest are too, unasked."""
    names = list(names)
    refused: dict[str, str] = {}
    for done, name in enumerate(names):
        if take_the_rest and done == len(refused) == ONE_BY_ONE:
            refused.update(dict.fromkeys(names[done:], next(iter(refused.values()))))
            break
        try:
            attempt(name)
        except RcloneError as exc:
            if exc.retryable:
                raise
            refused[name] = refusal(exc)
    return refused
