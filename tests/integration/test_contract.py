"""One contract, every provider: the same scenarios on S3, Azure Blob and GCS (JSON key content and key path),
each through a real `rclone-jupyter start`, real rclone and a real server (see cloud_servers.py). Then several
clouds at once: a change reaches all of them, one down does not block the others, disagreements are kept twice.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import datetime, timedelta, timezone

import pytest

from cloud_servers import CLOUD_KINDS, Cloud, FakeGCS, azurite, clouds, fake_gcs  # noqa: F401 - fixtures
from conftest import Bucket, settled, synced_tree, wait_until

MIB = 1024 * 1024


@pytest.fixture(params=CLOUD_KINDS)
def cloud(request, clouds):  # noqa: F811 - the fixture imported above
    return clouds(request.param)


def _wait_bucket(bucket, expected: dict[str, bytes], timeout: float = 40, what: str = "the bucket") -> None:
    """Wait until the bucket folder holds exactly `expected`; on timeout, say what differs."""
    try:
        settled(lambda: bucket.files() == expected, timeout=timeout, message=f"{what} == expected")
    except AssertionError:
        now = bucket.files()
        raise AssertionError(f"{what}: missing {sorted(set(expected) - set(now))}, unexpected "
                             f"{sorted(set(now) - set(expected))}, different "
                             f"{sorted(k for k in set(now) & set(expected) if now[k] != expected[k])}") from None


def _no_secret_anywhere(daemon, secrets: list[str]) -> None:
    text = daemon.log() + daemon.cli("status", "--json").stdout
    for secret in secrets:
        assert secret and secret not in text
    for path in daemon.data.rglob("*"):
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in secrets), path


def test_restore_into_an_empty_folder_then_every_kind_of_change(cloud, daemons, tmp_path):
    env = cloud.env()
    bucket = Bucket(tmp_path, env)
    content = {
        "top.ipynb": b'{"cells": []}',
        "a/b/c/deep.txt": b"deep",
        "old/inner/x.txt": b"x",
        "gone.txt": b"bye",
        "olddir/y.txt": b"y",
        "data with space/naïve ünïcode 文字.txt": "ünï".encode(),
        "big.bin": os.urandom(3 * MIB),
        "empty.txt": b"",
    }
    for rel, data in content.items():
        bucket.put(rel, data)
    daemon = daemons(env)
    daemon.data.mkdir()  # exists and is empty, as in a new container
    daemon.start()
    data = daemon.data
    assert synced_tree(data) == content  # restore
    assert bucket.files() == content  # the restore changed nothing in the bucket

    (data / "new.txt").write_text("created")  # create
    (data / "nested/deeper").mkdir(parents=True)  # create in new folders
    (data / "nested/deeper/n.txt").write_text("nested")
    (data / "top.ipynb").write_text('{"cells": [1]}')  # modify
    (data / "gone.txt").unlink()  # delete a file
    os.rename(data / "new.txt", data / "renamed.txt")  # rename a file
    os.rename(data / "old", data / "moved")  # move a folder with its content
    shutil.rmtree(data / "olddir")  # delete a folder with its content
    (data / "espace ünï/ça va.txt").parent.mkdir()
    (data / "espace ünï/ça va.txt").write_text("oui")  # spaces and unicode
    bigger = os.urandom(5 * MIB)
    (data / "big.bin").write_bytes(bigger)  # a file of several MiB, modified

    expected = {
        "top.ipynb": b'{"cells": [1]}',
        "a/b/c/deep.txt": b"deep",
        "moved/inner/x.txt": b"x",
        "data with space/naïve ünïcode 文字.txt": "ünï".encode(),
        "big.bin": bigger,
        "empty.txt": b"",
        "renamed.txt": b"created",
        "nested/deeper/n.txt": b"nested",
        "espace ünï/ça va.txt": b"oui",
    }
    _wait_bucket(bucket, expected)
    assert synced_tree(data) == expected
    assert daemon.stop() == 0
    assert bucket.files() == expected
    _no_secret_anywhere(daemon, cloud.secrets(env))


def test_empty_start_then_sigterm_flush_then_restore_elsewhere(cloud, daemons, tmp_path):
    env = cloud.env()
    bucket = Bucket(tmp_path, env)
    # Both sides empty; a long quiet period: without the shutdown flush the writes would still be waiting.
    daemon = daemons({**env, "RCLONE_JUPYTER_QUIET_PERIOD": "30", "RCLONE_JUPYTER_MAX_DELAY": "60"}).start()
    assert bucket.files() == {}
    payload = os.urandom(200_000)
    (daemon.data / "last-second.bin").write_bytes(payload)
    (daemon.data / "sub dir").mkdir()
    (daemon.data / "sub dir/ünï.txt").write_text("ünï")
    time.sleep(0.05)
    assert daemon.stop(signal.SIGTERM) == 0
    assert "every change is saved" in daemon.log()
    expected = {"last-second.bin": payload, "sub dir/ünï.txt": "ünï".encode()}
    assert bucket.files() == expected

    if cloud.kind == "gcs-json":
        # Kernels get a path to a private copy of the key, not the JSON content.
        copy = daemon.state / "kernel-files" / "google-service-account.json"
        assert copy.stat().st_mode & 0o777 == 0o600
        assert json.loads(copy.read_text()) == json.loads(env["GOOGLE_APPLICATION_CREDENTIALS"])
    elif cloud.kind == "gcs-path":
        assert not (daemon.state / "kernel-files").exists()  # the user's path is already what kernels want

    second = daemons(env, name="node2").start()  # a new container elsewhere
    assert synced_tree(second.data) == expected
    assert second.stop() == 0
    _no_secret_anywhere(daemon, cloud.secrets(env))


def test_azure_sas_refused_by_the_server_is_a_clear_error(azurite, daemons):  # noqa: F811
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    env = azurite.env()
    container = env["AZURE_CONTAINER_URL"].split("/")[4]
    forged = generate_container_sas("devstoreaccount1", container, account_key="d3Jvbmcga2V5IGZvciB0ZXN0cw==",
                                     permission=ContainerSasPermissions.from_string("racwdl"),
                                     expiry=datetime.now(timezone.utc) + timedelta(hours=1))
    daemon = daemons({**env, "AZURE_BLOB_SAS_TOKEN": forged})
    daemon.start(wait=False)
    assert daemon.proc.wait(timeout=120) != 0
    log = daemon.log()
    assert "credentials were refused" in log and "Traceback" not in log
    assert forged not in log
    assert not (daemon.data / "welcome.txt").exists()


def test_gcs_key_refused_by_the_token_server_is_a_clear_error(fake_gcs, daemons, tmp_path):  # noqa: F811
    from cloud_servers import make_service_account_key

    env = fake_gcs.env()
    other, _public = make_service_account_key(fake_gcs.tokens.url)  # signed by a key the server does not know
    daemon = daemons({**env, "GOOGLE_APPLICATION_CREDENTIALS": json.dumps(other)})
    daemon.start(wait=False)
    assert daemon.proc.wait(timeout=120) != 0
    log = daemon.log()
    assert "credentials were refused" in log and "Traceback" not in log
    assert other["private_key"].splitlines()[3] not in log


# -- several clouds at once -----------------------------------------------------------------------------


def _three(clouds, gcs=None):  # noqa: F811
    """S3, Azure and GCS at once: the parts, each one's variables and the merged environment."""
    parts = {kind: clouds(kind) for kind in ("s3", "azure", "gcs-json")}
    if gcs is not None:
        parts["gcs-json"] = Cloud("gcs-json", gcs)
    envs = {kind: cloud.env() for kind, cloud in parts.items()}
    merged = {k: v for env in envs.values() for k, v in env.items()}
    return parts, envs, merged


@pytest.fixture
def own_gcs(tmp_path):
    """A fake-gcs-server of this test's own, so the test can stop and restart it."""
    server = FakeGCS(tmp_path / "own-gcs", tmp_path).start()
    yield server
    server.close()


def test_a_change_reaches_every_cloud_and_one_down_blocks_no_other(clouds, own_gcs, daemons, tmp_path):  # noqa: F811
    _parts, envs, merged = _three(clouds, gcs=own_gcs)
    buckets = {}
    for kind, env in envs.items():
        (tmp_path / kind).mkdir()
        buckets[kind] = Bucket(tmp_path / kind, env)
    daemon = daemons(merged).start()
    assert set(daemon.status()["remotes"]) == {"s3", "azure", "gcs"}
    restored = [line for line in daemon.log().splitlines() if "restore from " in line]
    assert [line.split("restore from ")[1][:5] for line in restored] == ["s3://", "http:", "gs://"]  # PROVIDERS
    (daemon.data / "first.txt").write_text("to all")
    for kind, bucket in buckets.items():
        settled(lambda: bucket.files() == {"first.txt": b"to all"}, timeout=30, message=f"{kind} has first.txt")

    own_gcs.stop()  # GCS goes down
    (daemon.data / "second.txt").write_text("while gcs is down")
    expected = {"first.txt": b"to all", "second.txt": b"while gcs is down"}
    for kind in ("s3", "azure"):
        settled(lambda: buckets[kind].files() == expected, timeout=30, message=f"{kind} has second.txt")
    gcs_state = wait_until(lambda: (r := daemon.status()["remotes"]["gcs"])["state"] in ("error", "retrying") and r,
                           timeout=30,
                           message="gcs reported down")
    assert gcs_state["pending_paths"] == ["second.txt"] and gcs_state["last_error"]
    # The object is in the bucket a moment before the daemon has the push's answer and says so: wait for that.
    status = wait_until(lambda: (s := daemon.status())["remotes"]["azure"]["pending"] == 0
                        and s["remotes"]["s3"]["pending"] == 0 and s, timeout=10, message="s3 and azure saved")
    assert status["remotes"]["s3"]["state"] == status["remotes"]["azure"]["state"] == "ok"
    assert status["remotes"]["gcs"]["pending_paths"] == ["second.txt"]
    human = daemon.cli("status").stdout
    assert "[gcs]" in human and "error" in human and "[s3]" in human and "[azure]" in human

    own_gcs.start()  # back, same port and storage: it catches up
    settled(lambda: buckets["gcs-json"].files() == expected, timeout=60, message="gcs caught up")
    daemon.wait_synced(timeout=30)
    assert daemon.stop() == 0


def test_clouds_that_disagree_at_restore_keep_every_version(clouds, daemons, tmp_path):  # noqa: F811
    _parts, envs, merged = _three(clouds)
    buckets = {}
    for kind, env in envs.items():
        (tmp_path / kind).mkdir()
        buckets[kind] = Bucket(tmp_path / kind, env)
    t = time.time() - 3600
    buckets["s3"].put("nb.ipynb", b"s3 version", mtime=t)
    buckets["azure"].put("nb.ipynb", b"azure version, the newest", mtime=t + 100)
    buckets["gcs-json"].put("nb.ipynb", b"gcs version, the oldest", mtime=t - 100)
    for kind, bucket in buckets.items():  # the same file everywhere, saved at different times: no conflict
        bucket.put("same.txt", b"identical", mtime=t + len(kind))
        bucket.put(f"only-in-{kind}.txt", kind.encode(), mtime=t)
    buckets["azure"].put("README", b"azure readme", mtime=t)
    buckets["gcs-json"].put("README", b"gcs readme", mtime=t)

    daemon = daemons(merged).start()
    expected = {
        "nb.ipynb": b"azure version, the newest",
        "nb.conflict1.ipynb": b"s3 version",
        "nb.conflict2.ipynb": b"gcs version, the oldest",
        "same.txt": b"identical",
        "only-in-s3.txt": b"s3",
        "only-in-azure.txt": b"azure",
        "only-in-gcs-json.txt": b"gcs-json",
        "README": b"azure readme",
        "README.conflict1": b"gcs readme",
    }
    assert synced_tree(daemon.data) == expected
    for kind, bucket in buckets.items():
        assert bucket.files() == expected, kind
    assert "differs here and in" in daemon.log()
    assert daemon.stop() == 0
