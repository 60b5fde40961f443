"""Google Cloud Storage through a service-account key.

`GOOGLE_BUCKET_FOLDER` is `bucket` or `bucket/folder/...` (a `gs://` prefix is accepted).
`GOOGLE_APPLICATION_CREDENTIALS` is either the key's JSON *content* (as SaladCloud forms take it, with `\\n`
inside the private key) or the path of the key file (as Google's libraries expect it).
`GOOGLE_PROJECT_ID` is optional (the key names its project).
`GOOGLE_STORAGE_ENDPOINT` points rclone at another GCS API, e.g. a local fake-gcs-server for tests
(`http://127.0.0.1:4443`; `/storage/v1/` is added when no path is given).

rclone gets the key on one line (`service_account_credentials`). JupyterLab's kernels get
GOOGLE_APPLICATION_CREDENTIALS as the path of a private copy of the key, never as JSON content.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from urllib.parse import urlparse

from rclone_jupyter.remotes import common

NAME = "gcs"
VARIABLES = ("GOOGLE_BUCKET_FOLDER", "GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_STORAGE_ENDPOINT")
_TRIGGERS = ("GOOGLE_BUCKET_FOLDER", "GOOGLE_APPLICATION_CREDENTIALS")
CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
KERNEL_KEY_FILE = "google-service-account.json"
_HOW = ("create a key for a service account (IAM > Service accounts > Keys > Add key > JSON) and paste the "
        "file's content, or give the path of the file")


def detect(env: Mapping[str, str]) -> bool:
    return any(common.get(env, v) for v in _TRIGGERS)


def _looks_like_path(value: str) -> bool:
    return len(value) < 1024 and "\n" not in value and not value.lstrip().startswith("{") and "PRIVATE" not in value


def read_key(value: str, problems: list[str]) -> tuple[dict, bool] | None:
    """Given the variable's value, return (the service-account key, whether it came as content) or None.

    Never quotes the value unless it is a file path: the content holds a private key.
    """
    is_content = value.startswith("{")
    if is_content:
        text = value
        where = CREDENTIALS
    elif _looks_like_path(value):
        path = os.path.expanduser(value)
        if not os.path.isfile(path):
            problems.append(f"{CREDENTIALS}: {value!r} is neither a service-account JSON key nor an existing "
                            f"file; {_HOW}.")
            return None
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{CREDENTIALS}: cannot read the key file {value!r} ({exc.__class__.__name__}); "
                            "check its permissions.")
            return None
        where = f"{CREDENTIALS} (the file {value})"
    else:
        problems.append(f"{CREDENTIALS} is not valid JSON (it must start with '{{'); {_HOW}.")
        return None
    try:
        # strict=False: a key pasted with real line breaks inside the private key still parses.
        key = json.loads(text, strict=False)
    except ValueError as exc:
        # The decoder's message names a position, never the text.
        reason = getattr(exc, "msg", "not JSON")
        line, col = getattr(exc, "lineno", "?"), getattr(exc, "colno", "?")
        problems.append(f"{where} is not valid JSON ({reason} at line {line}, column {col}); paste the key "
                        "file's content unchanged, or give its path.")
        return None
    if not isinstance(key, dict):
        problems.append(f"{where} is JSON but not a service-account key object; {_HOW}.")
        return None
    kind = key.get("type")
    if kind != "service_account":
        found = f"a {kind!r} credential" if isinstance(kind, str) else "a JSON without 'type'"
        problems.append(f"{where} is {found}, not a service-account key (\"type\": \"service_account\"); {_HOW}.")
        return None
    private_key = key.get("private_key")
    if not isinstance(private_key, str) or "PRIVATE KEY" not in private_key:
        problems.append(f"{where} has no 'private_key' (or it is not a PEM key); download a new JSON key for "
                        "the service account.")
        return None
    if not isinstance(key.get("client_email"), str) or "@" not in key["client_email"]:
        problems.append(f"{where} has no 'client_email'; download a new JSON key for the service account.")
        return None
    return key, is_content


def _endpoint(value: str, problems: list[str]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        problems.append(f"GOOGLE_STORAGE_ENDPOINT: {value!r} is not an http(s) URL; use e.g. "
                        "'http://127.0.0.1:4443' (a fake-gcs-server) or unset it for Google.")
        return ""
    if parsed.path in ("", "/"):
        return value.rstrip("/") + "/storage/v1/"
    return value


def parse(env: Mapping[str, str], problems: list[str]):
    from rclone_jupyter.remotes import Remote

    before = len(problems)
    common.check_single_line(env, ("GOOGLE_BUCKET_FOLDER", "GOOGLE_PROJECT_ID", "GOOGLE_STORAGE_ENDPOINT"), problems)
    folder_value = common.get(env, "GOOGLE_BUCKET_FOLDER")
    credentials = common.get(env, CREDENTIALS)
    project = common.get(env, "GOOGLE_PROJECT_ID")
    endpoint_value = common.get(env, "GOOGLE_STORAGE_ENDPOINT")

    root = None
    if folder_value:
        root = common.parse_bucket_folder("GOOGLE_BUCKET_FOLDER", folder_value, "gs://", problems)
    else:
        problems.append(f"GOOGLE_BUCKET_FOLDER is not set, but {CREDENTIALS} is: set it to 'bucket' or "
                        "'bucket/folder' (or unset the GOOGLE_* variables to run without Google Cloud Storage).")
    found = None
    if not credentials:
        problems.append(f"{CREDENTIALS} is not set: Google Cloud Storage needs a service-account key; {_HOW}.")
    else:
        found = read_key(credentials, problems)
    if project and (any(c.isspace() for c in project) or len(project) > 64):
        problems.append(f"GOOGLE_PROJECT_ID: {project!r} is not a project id (e.g. 'my-project-123').")
    endpoint = _endpoint(endpoint_value, problems) if endpoint_value else ""
    if len(problems) > before or found is None:
        return None

    key, is_content = found
    one_line = json.dumps(key, separators=(",", ":"))
    private_key = key["private_key"]
    where = f" at {endpoint}" if endpoint else ""
    return Remote(
        name=NAME,
        provider=NAME,
        root=root,
        options={
            "service_account_credentials": one_line,
            "project_number": project or str(key.get("project_id", "")),
            "endpoint": endpoint,
        },
        secret_keys=frozenset({"service_account_credentials"}),
        # The private key as it is, and as JSON escapes it, may show up without the rest of the key.
        extra_secrets=(private_key, json.dumps(private_key)[1:-1]),
        display=f"gs://{root}{where}",
        # Google's libraries read GOOGLE_APPLICATION_CREDENTIALS as a path: kernels get a private copy.
        kernel_files={CREDENTIALS: (KERNEL_KEY_FILE, json.dumps(key, indent=2) + "\n")} if is_content else {},
    )
