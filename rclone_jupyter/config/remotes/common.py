"""Checks shared by the providers: each appends a message naming the variable and what to do."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import ParseResult, urlparse

# Lower-case letters, digits, dots and hyphens: the rules AWS, GCS and MinIO share for bucket names.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


def get(env: Mapping[str, str], name: str) -> str:
    """Return the variable's value with surrounding blanks and quotes removed ('' when unset).

    Users paste values quoted in docker/SaladCloud forms; the quotes are not part of the value.
    """
    value = env.get(name, "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1].strip()
    return value


def check_single_line(env: Mapping[str, str], names: tuple[str, ...], problems: list[str]) -> None:
    for name in names:
        if any(c in get(env, name) for c in "\r\n"):
            problems.append(f"{name} contains a line break; paste the value on one line.")


def parse_bucket_folder(variable: str, value: str, scheme: str, problems: list[str]) -> str | None:
    """Given `bucket` or `bucket/folder/...` (optionally `scheme://...`), return `bucket/folder` normalised."""
    if value.startswith(scheme):
        value = value[len(scheme):]
    value = value.strip("/")
    if not value:
        problems.append(f"{variable} is empty; set it to 'bucket' or 'bucket/folder'.")
        return None
    bucket, _, folder = value.partition("/")
    if not _BUCKET.match(bucket):
        problems.append(
            f"{variable}: {bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, '.', '-'); "
            f"set it to 'bucket' or 'bucket/folder'."
        )
        return None
    parts = [p for p in folder.split("/") if p]
    if any(p in (".", "..") for p in parts) or "\\" in folder:
        problems.append(f"{variable}: the folder part {folder!r} may not contain '.', '..' or backslashes.")
        return None
    return "/".join([bucket, *parts])


def parse_url(variable: str, value: str, example: str, problems: list[str]) -> ParseResult | None:
    """Given an http(s) URL from `variable`, return it parsed, or None after adding a problem.

    Refuses what would only fail later, at the first rclone run, as a "temporary" error retried for a minute:
    a broken IPv6 host, a port that is not 1-65535, credentials (user:password@, which would be shown in logs
    and status). The value is echoed only when it carries no credentials.
    """
    authority = value.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    if "@" in authority:
        problems.append(f"{variable} contains credentials (user:password@); remove them (the value is not shown "
                        "here, as it holds a secret).")
        return None
    try:
        parsed = urlparse(value)
    except ValueError:
        problems.append(f"{variable}: {value!r} is not a valid URL (its host is malformed, e.g. an IPv6 address "
                        f"without its closing ']'); use e.g. '{example}'.")
        return None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        problems.append(f"{variable}: {value!r} is not an http(s) URL; use e.g. '{example}'.")
        return None
    try:
        port = parsed.port
        if ":" in parsed.hostname:
            ipaddress.IPv6Address(parsed.hostname)
    except ValueError:
        problems.append(f"{variable}: {value!r} has no valid host and port (a port is a number from 1 to 65535); "
                        f"use e.g. '{example}'.")
        return None
    if port == 0:
        problems.append(f"{variable}: {value!r} has port 0 (a port is a number from 1 to 65535); use e.g. "
                        f"'{example}'.")
        return None
    return parsed
