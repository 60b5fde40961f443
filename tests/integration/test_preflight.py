"""The pre-flight (issue 13) against real servers: `rclone-jupyter check` and the start of `start`.

Each failure stops before anything is changed: the data folder stays empty, the bucket keeps what it had.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time
from pathlib import Path

import pytest

from cloud_servers import azurite, fake_gcs  # noqa: F401 - fixtures
from conftest import CLI, Bucket, clean_env, needs, tree
from rclone_jupyter.rclone import commands

MiB = 1024 * 1024


def check(tmp_path: Path, env: dict[str, str], data: Path | None = None) -> subprocess.CompletedProcess:
    full = clean_env(HOME=str(tmp_path / "home"), RCLONE_JUPYTER_DATA_DIR=str(data or tmp_path / "data"),
                     RCLONE_JUPYTER_STATE_DIR=str(tmp_path / "state"), JUPYTERLAB_PW="a-long-enough-password",
                     **env)
    return subprocess.run([CLI, "check"], env=full, capture_output=True, text=True, timeout=60)


def lines(result: subprocess.CompletedProcess, status: str) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith(status)]


def assert_clean(result: subprocess.CompletedProcess, secrets: list[str]) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    for secret in secrets:
        assert secret not in text


def test_the_listing_is_list_requests_alone():
    listing = commands.folder_listing("s3:b/f")
    assert {"--fast-list", "--use-server-modtime", "-R"} <= set(listing)
    assert "m" not in listing[listing.index("--format") + 1]  # a MIME type costs a HEAD per object on S3
    assert "--exclude" not in listing  # the heartbeats are needed too


def test_the_probe_costs_four_requests_and_the_listing_list_pages_alone(moto, tmp_path):
    """Counted by moto: a PUT (no HEAD before or after it), the read back (a HEAD, for the time rclone gives the
    local copy, and a GET), a DELETE; the listing is LIST pages, no HEAD per object."""
    bucket = Bucket(tmp_path, moto.env())
    bucket.put("nb.ipynb", b"{}")
    moto.mark()
    result = check(tmp_path, moto.env())
    assert result.returncode == 0, result.stdout
    counts = moto.counts()
    assert (counts["PUT"], counts["HEAD"], counts["GET"], counts["DELETE"]) == (1, 1, 1, 1), counts
    assert counts["LIST"] >= 1 and sum(counts.values()) == counts["LIST"] + 4, counts


def test_check_passes_and_changes_nothing(s3, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    bucket.put("nb.ipynb", b"{}")
    result = check(tmp_path, s3.env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(lines(result, "OK")) == 3 and not lines(result, "FAILED") and not lines(result, "WARNING")
    assert "1 files" in result.stdout and "written, read back and deleted" in result.stdout
    assert bucket.files() == {"nb.ipynb": b"{}"} and bucket.nodes() == {}
    assert not (tmp_path / "data").exists() and not (tmp_path / "state").exists()
    assert_clean(result, s3.secrets())


def test_wrong_keys_fail_with_the_reason(s3, tmp_path):
    needs(s3, "checks_signatures", "moto accepts any secret")
    wrong = check(tmp_path, {**s3.env(), "AWS_SECRET_ACCESS_KEY": "Wrong-secret-4Xq"})
    assert wrong.returncode == 1
    (failed,) = lines(wrong, "FAILED")
    assert "s3 bucket" in failed and "credentials were refused" in failed
    assert_clean(wrong, ["Wrong-secret-4Xq", *s3.secrets()])


def test_a_missing_bucket_fails_with_the_reason(s3, tmp_path):
    missing = check(tmp_path, {**s3.env(), "AWS_S3_BUCKET_FOLDER": "no-such-bucket/me"})
    assert missing.returncode == 1
    (failed,) = lines(missing, "FAILED")
    assert "the bucket 'no-such-bucket'" in failed and "does not exist" in failed
    # The probe runs beside the listing: its write must not have made the bucket (no_check_bucket).
    buckets = Bucket(tmp_path, s3.env())._run("lsf", f"{Bucket(tmp_path, s3.env()).remote.name}:").stdout.split()
    assert "no-such-bucket/" not in buckets and buckets


def test_start_stops_before_the_restore_when_the_preflight_fails(s3, daemons, tmp_path):
    needs(s3, "checks_signatures", "moto accepts any secret")
    daemon = daemons({**s3.env(), "AWS_SECRET_ACCESS_KEY": "Wrong-secret-4Xq"})
    daemon.start(wait=False)
    code = daemon.proc.wait(timeout=30)
    assert code == 3
    log = daemon.log()
    assert "restoring" not in log  # stopped before the restore (not a wall-clock bound: a loaded machine is slow)
    assert "pre-flight" in log and "credentials were refused" in log and "Wrong-secret-4Xq" not in log
    assert not daemon.data.exists()  # the restore never ran: nothing was created
    assert daemon.status()["phase"] == "failed"


def _read_only_sas(azurite) -> tuple[str, str]:
    """A container and a SAS that refers to a stored access policy allowing read and list only.

    The token carries no `sp=` (the policy holds the permissions), so the settings cannot see that it is
    read-only: only the probe finds it.
    """
    from azure.storage.blob import AccessPolicy, ContainerSasPermissions, generate_container_sas

    from cloud_servers import AZURITE_ACCOUNT, AZURITE_KEY

    container, _ = azurite.new_container()
    client = azurite._client().get_container_client(container)
    policy = AccessPolicy(permission=ContainerSasPermissions(read=True, list=True),
                          expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2),
                          start=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
    client.set_container_access_policy(signed_identifiers={"read-only": policy})
    token = generate_container_sas(AZURITE_ACCOUNT, container, account_key=AZURITE_KEY, policy_id="read-only")
    return container, token


def test_a_read_only_sas_is_found_by_the_probe(azurite, tmp_path):
    container, token = _read_only_sas(azurite)
    env = {"AZURE_CONTAINER_URL": f"{azurite.service_url}/{container}/me", "AZURE_BLOB_SAS_TOKEN": token}
    result = check(tmp_path, env)
    assert result.returncode == 1, result.stdout
    assert lines(result, "OK")[0].startswith("OK      azure bucket")  # listing is allowed ...
    (failed,) = lines(result, "FAILED")  # ... writing is not
    assert "azure write/read/delete" in failed and "could not write" in failed
    signature = token.split("sig=")[1].split("&")[0]
    assert_clean(result, [token, signature])


def test_a_sas_that_expires_soon_is_a_warning_with_the_date(azurite, tmp_path):
    expiry = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(days=3)
    env = azurite.env(expiry=expiry)
    result = check(tmp_path, env)
    assert result.returncode == 0, result.stdout  # a warning, not a failure
    (warning,) = lines(result, "WARNING")
    assert "azure expiry" in warning and expiry.isoformat(timespec="minutes") in warning


def test_a_fresh_heartbeat_of_another_container_is_a_warning_naming_it(s3, tmp_path):
    # A stale heartbeat is made by back-dating the file: on an AWS-like server the upload time counts.
    needs(s3, "server_time_is_file_time", "a heartbeat cannot be back-dated where Last-Modified is the upload time")
    bucket = Bucket(tmp_path, s3.env())
    bucket.put(".rclone-jupyter/nodes/old-node-1a2b3c4d.json", json.dumps({"node": "old-node-1a2b3c4d"}).encode())
    bucket.put(".rclone-jupyter/nodes/gone-node-00000000.json", b"{}", mtime=time.time() - 7200)
    result = check(tmp_path, s3.env())
    assert result.returncode == 0, result.stdout
    (warning,) = lines(result, "WARNING")
    assert "old-node-1a2b3c4d" in warning and "gone-node" not in warning


def test_storage_emulator_host_reaches_fake_gcs_without_a_key(fake_gcs, tmp_path):
    bucket = fake_gcs.new_bucket()
    env = {"GOOGLE_BUCKET_FOLDER": f"{bucket}/me", "STORAGE_EMULATOR_HOST": f"127.0.0.1:{fake_gcs.port}"}
    result = check(tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"gs://{bucket}/me at http://127.0.0.1:{fake_gcs.port}/storage/v1/" in result.stdout
    assert "written, read back and deleted" in lines(result, "OK")[1]


@pytest.mark.slow
def test_a_bucket_folder_bigger_than_the_disk_stops_the_start_within_seconds(s3, daemons, small_disk, tmp_path):
    bucket = Bucket(tmp_path, s3.env())
    source = tmp_path / "big"
    source.mkdir()
    for i in range(4):
        (source / f"part{i}.bin").write_bytes(bytes([i]) * (10 * MiB))  # 40 MiB in all
    subprocess.run([str(Path(CLI).parent / "rclone"), "copy", str(source), bucket.remote.path("data")],
                   env=clean_env(RCLONE_CONFIG=str(bucket.config)), check=True, capture_output=True)
    before = bucket.files()
    assert sum(len(v) for v in before.values()) == 40 * MiB

    disk = small_disk("data", "24m")
    result = check(tmp_path, s3.env(), data=disk)
    assert result.returncode == 1
    (failed,) = lines(result, "FAILED")
    assert "disk space" in failed and "40.0 MiB" in failed and "24.0 MiB free" in failed

    daemon = daemons(s3.env())
    daemon.data = disk
    daemon.env["RCLONE_JUPYTER_DATA_DIR"] = str(disk)
    daemon.start(wait=False)
    assert daemon.proc.wait(timeout=30) == 3
    assert "40.0 MiB" in daemon.log() and "24.0 MiB free" in daemon.log()
    assert "restoring" not in daemon.log()  # stopped before the restore began
    assert tree(disk) == {}  # nothing restored, not even in part
    assert bucket.files() == before
