"""`rclone-jupyter check` reports old unfinished multipart uploads under the bucket folder (issue 16): a node
killed in the middle of a large upload leaves parts that S3 bills until a lifecycle rule or a cleanup removes
them. moto lists them (and dates them 2010, so every one is old); `rclone serve s3` cannot list them at all.
"""

from __future__ import annotations

import subprocess

import boto3

from conftest import CLI, clean_env


def _client(s3):
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{s3.moto_port}", aws_access_key_id="x",
                        aws_secret_access_key="y", region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def check(tmp_path, env) -> subprocess.CompletedProcess:
    full = clean_env(**env, RCLONE_JUPYTER_DATA_DIR=str(tmp_path / "data"), HOME=str(tmp_path))
    return subprocess.run([CLI, "check"], env=full, capture_output=True, text=True, timeout=120)


def test_old_incomplete_uploads_in_the_folder_are_reported(s3, tmp_path):
    if s3.kind != "moto":
        # rclone serve s3 answers ListMultipartUploads with NoSuchUpload: nothing to report, no failure either.
        result = check(tmp_path, s3.env())
        assert result.returncode == 0, result.stdout + result.stderr
        assert "incomplete uploads" not in result.stdout
        return
    client = _client(s3)
    mine = client.create_multipart_upload(Bucket=s3.bucket, Key="team/alice/models/ckpt.bin")
    client.upload_part(Bucket=s3.bucket, Key="team/alice/models/ckpt.bin", UploadId=mine["UploadId"], PartNumber=1,
                       Body=b"x" * 1024)
    client.create_multipart_upload(Bucket=s3.bucket, Key="team/alice2/other.bin")  # another folder: not ours

    result = check(tmp_path, s3.env())
    lines = [line for line in result.stdout.splitlines() if "incomplete uploads" in line]
    assert result.returncode == 0, result.stdout + result.stderr  # a cost to fix, not a broken setup
    assert len(lines) == 1 and lines[0].startswith("WARNING"), result.stdout
    assert "1 multipart upload(s)" in lines[0] and "models/ckpt.bin" in lines[0], lines[0]
    assert "other.bin" not in lines[0] and "AbortIncompleteMultipartUpload" in lines[0]

    client.abort_multipart_upload(Bucket=s3.bucket, Key="team/alice/models/ckpt.bin", UploadId=mine["UploadId"])
    result = check(tmp_path, s3.env())
    assert "incomplete uploads" not in result.stdout, result.stdout
