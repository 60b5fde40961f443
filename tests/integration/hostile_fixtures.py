"""Making a hostile bucket the way anyone with the bucket's key can: through the S3 API itself (boto3), with
exact keys and bytes, no rclone in between (rclone would encode or refuse some of them)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


class S3Api:
    """Objects of one bucket folder, written and read through the S3 API."""

    def __init__(self, server, folder: str = "team/alice"):
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = server.bucket, f"{folder}/" if folder else ""
        self.client = boto3.client(
            "s3", endpoint_url=server.endpoint, aws_access_key_id=server.key_id,
            aws_secret_access_key=server.secret, region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                          request_checksum_calculation="when_required", response_checksum_validation="when_required"))

    def put(self, name: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=body)

    def get(self, name: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)["Body"].read()

    def names(self) -> set[str]:
        out: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
            out |= {item["Key"][len(self.prefix):] for item in page.get("Contents", [])}
        return out


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def warnings(log: str, text: str) -> list[str]:
    """The WARNING lines of a daemon log that contain `text`."""
    return [line for line in log.splitlines() if "WARNING" in line and text in line]
