"""engine/refusals.py: which failures are a refusal of one object, and how a batch is narrowed down."""

import pytest

from rclone_jupyter.engine.refusals import ONE_BY_ONE, denied, one_by_one, refusal
from rclone_jupyter.errors import RcloneError
from rclone_jupyter.logs import secret_mask

FORBIDDEN = "operation error S3: GetObject, https response error StatusCode: 403, api error AccessDenied"


def failure(message: str, retryable: bool = False) -> RcloneError:
    return RcloneError(message, exit_code=1, retryable=retryable)


def attempts_refusing(refused: set[str], log: list[str]):
    def attempt(name: str) -> None:
        log.append(name)
        if name in refused:
            raise failure(FORBIDDEN)
    return attempt


def test_a_403_is_a_refusal_and_an_outage_is_not():
    assert denied(failure(FORBIDDEN))
    assert denied(failure("googleapi: Error 403: does not have storage.objects.get access"))
    assert not denied(failure("dial tcp 127.0.0.1:9: connect: connection refused", retryable=True))
    assert not denied(failure("object not found"))


def test_only_the_refused_names_are_reported_and_every_other_one_is_tried():
    asked: list[str] = []
    found = one_by_one(["a", "b", "c", "d"], attempts_refusing({"b", "d"}, asked))
    assert asked == ["a", "b", "c", "d"]
    assert set(found) == {"b", "d"} and "access denied" in found["b"]


def test_a_retryable_failure_alone_is_raised_never_taken_for_a_refusal():
    def down(name: str) -> None:
        raise failure("connection reset by peer", retryable=True)
    with pytest.raises(RcloneError):
        one_by_one(["a", "b"], down)


def test_the_rest_is_taken_as_refused_only_when_asked_and_every_first_one_was_refused():
    names = [f"secret/{i}" for i in range(10)]
    asked: list[str] = []
    assert set(one_by_one(names, attempts_refusing(set(names), asked), take_the_rest=True)) == set(names)
    assert len(asked) == ONE_BY_ONE
    asked.clear()
    found = one_by_one(names, attempts_refusing(set(names[1:]), asked), take_the_rest=True)
    assert len(asked) == len(names) and set(found) == set(names[1:])  # one got through: each is asked
    asked.clear()
    assert set(one_by_one(names, attempts_refusing(set(names), asked))) == set(names)
    assert len(asked) == len(names)  # the push's check asks each: a file wrongly unsaved is worse than a HEAD


def test_a_refusal_shown_in_the_status_never_carries_a_secret_even_cut_short():
    secret = "sv=2024-01-01&sig=TopSecretSignature0123456789"
    secret_mask.add(secret)
    url = "GET https://acct.blob.core.windows.net/c/a.txt?"
    long_message = "x" * (270 - len(url)) + url + f"{secret}: 500 Internal Error"  # the cut falls in the secret
    why = refusal(failure(long_message))
    assert "TopSecret" not in why and "sig=" not in why
