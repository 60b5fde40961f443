"""AWS S3 and S3-compatible services (MinIO, Cloudflare R2, a local `rclone serve s3`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import urlparse

from rclone_jupyter.config.remotes import common

NAME = "s3"
VARIABLES = (
    "AWS_S3_BUCKET_FOLDER",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_CREDENTIAL_EXPIRATION",
)
_TRIGGERS = ("AWS_S3_BUCKET_FOLDER", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def detect(env: Mapping[str, str]) -> bool:
    return any(common.get(env, v) for v in _TRIGGERS)


def _provider_for(endpoint: str) -> str:
    if not endpoint:
        return "AWS"
    if urlparse(endpoint).hostname and urlparse(endpoint).hostname.endswith(".r2.cloudflarestorage.com"):
        return "Cloudflare"
    return "Other"


def parse(env: Mapping[str, str], problems: list[str]):
    from rclone_jupyter.config.remotes import Remote

    before = len(problems)
    common.check_single_line(env, VARIABLES, problems)
    folder_value = common.get(env, "AWS_S3_BUCKET_FOLDER")
    key_id = common.get(env, "AWS_ACCESS_KEY_ID")
    secret = common.get(env, "AWS_SECRET_ACCESS_KEY")
    endpoint = common.get(env, "AWS_ENDPOINT_URL")

    root = None
    if folder_value:
        root = common.parse_bucket_folder("AWS_S3_BUCKET_FOLDER", folder_value, "s3://", problems)
    else:
        problems.append(
            "AWS_S3_BUCKET_FOLDER is not set, but AWS credentials are: set it to 'bucket' or 'bucket/folder' "
            "(or unset the AWS_* variables to run without S3)."
        )
    if not key_id:
        problems.append("AWS_ACCESS_KEY_ID is not set: S3 needs an access key id and its secret key.")
    if not secret:
        problems.append("AWS_SECRET_ACCESS_KEY is not set: S3 needs an access key id and its secret key.")
    if endpoint:
        # The endpoint is shown in logs and status: it must not carry credentials (never echoed).
        common.parse_url("AWS_ENDPOINT_URL", endpoint, "https://minio.example.com:9000", problems)
    expires = None
    expiration = common.get(env, "AWS_CREDENTIAL_EXPIRATION")
    if expiration:
        # Set beside temporary credentials by AWS tooling (botocore reads it too): ISO 8601.
        try:
            expires = dt.datetime.fromisoformat(expiration.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"AWS_CREDENTIAL_EXPIRATION: {expiration!r} is not a date and time "
                            "(e.g. '2030-01-01T00:00:00Z').")
        else:
            expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.timezone.utc)
    if len(problems) > before:
        return None

    region = common.get(env, "AWS_REGION") or common.get(env, "AWS_DEFAULT_REGION")
    options = {
        "provider": _provider_for(endpoint),
        "access_key_id": key_id,
        "secret_access_key": secret,
        "session_token": common.get(env, "AWS_SESSION_TOKEN"),
        "region": region or ("us-east-1" if endpoint else ""),
        "endpoint": endpoint,
        # S3-compatible servers (MinIO, local ones) generally want path-style addressing.
        "force_path_style": "true" if endpoint else "",
    }
    where = f" at {endpoint}" if endpoint else ""
    return Remote(
        name=NAME,
        provider=NAME,
        root=root,
        options=options,
        secret_keys=frozenset({"secret_access_key", "session_token"}),
        display=f"s3://{root}{where}",
        expires=expires,
        expiry_source="AWS_CREDENTIAL_EXPIRATION",
    )
