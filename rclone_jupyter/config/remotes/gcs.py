"""Google Cloud Storage through a service-account key.

`GOOGLE_BUCKET_FOLDER` is `bucket` or `bucket/folder/...` (a `gs://` prefix is accepted).
`GOOGLE_APPLICATION_CREDENTIALS` is either the key's JSON *content* (as SaladCloud forms take it, with `\\n`
inside the private key) or the path of the key file (as Google's libraries expect it).
`GOOGLE_PROJECT_ID` is optional (the key names its project).
`GOOGLE_STORAGE_ENDPOINT` points rclone at another GCS API, e.g. a local fake-gcs-server for tests
(`http://127.0.0.1:4443`; `/storage/v1/` is added when no path is given).
`STORAGE_EMULATOR_HOST` is honoured as Google's client libraries do: the emulator's address (`host:port` or
a URL; `http://` is assumed), and no credentials are needed for it (anonymous access when no key is given).
`GOOGLE_STORAGE_ENDPOINT` wins when both are set.

rclone gets the key on one line (`service_account_credentials`). JupyterLab's kernels get
GOOGLE_APPLICATION_CREDENTIALS as the path of a private copy of the key, never as JSON content.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from collections.abc import Mapping

from rclone_jupyter.config.remotes import common

NAME = "gcs"
VARIABLES = ("GOOGLE_BUCKET_FOLDER", "GOOGLE_PROJECT_ID", "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_STORAGE_ENDPOINT",
             "STORAGE_EMULATOR_HOST")
_TRIGGERS = ("GOOGLE_BUCKET_FOLDER", "GOOGLE_APPLICATION_CREDENTIALS")
CREDENTIALS = "GOOGLE_APPLICATION_CREDENTIALS"
KERNEL_KEY_FILE = "google-service-account.json"
_HOW = ("create a key for a service account (IAM > Service accounts > Keys > Add key > JSON) and paste the "
        "file's content, or give the path of the file")


def detect(env: Mapping[str, str]) -> bool:
    return any(common.get(env, v) for v in _TRIGGERS)


# A PEM block: its label, then base64 lines, then the END line with the same label.
_PEM = re.compile(r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----(.*?)-----END \1-----", re.S)


def pem_problem(private_key: str) -> str | None:
    """Given a key's `private_key`, return why it is not a usable PEM private key, or None.

    rclone would only say "private key should be a PEM ... parse error" at its first request, and that
    failure was retried as temporary. Checks the structure (the PEM block, its base64, the DER sequence's
    length) without any crypto library; never quotes the key.
    """
    block = _PEM.search(private_key)
    if block is None:
        return "is not a PEM block (-----BEGIN PRIVATE KEY----- ... -----END PRIVATE KEY-----)"
    try:
        der = base64.b64decode("".join(block.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        return "is not valid base64 between its BEGIN and END lines (cut or changed when pasted?)"
    if len(der) < 4 or der[0] != 0x30:
        return "does not hold a DER key"
    if der[1] & 0x80:
        count = der[1] & 0x7F
        length, header = int.from_bytes(der[2:2 + count], "big"), 2 + count
    else:
        length, header = der[1], 2
    if header + length != len(der):
        return "is incomplete or has extra bytes (cut or changed when pasted?)"
    return None


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
            # Not quoted: a short value that is not a path may be a secret pasted into the wrong variable.
            problems.append(f"{CREDENTIALS} is neither a service-account JSON key nor the path of an existing "
                            f"file (its value is not shown here); {_HOW}.")
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
    except RecursionError:
        problems.append(f"{where} is not a service-account key (its JSON is nested too deeply); {_HOW}.")
        return None
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
    broken = pem_problem(private_key)
    if broken:
        problems.append(f"{where}: its 'private_key' {broken}; paste the key file's content unchanged, or download "
                        "a new JSON key for the service account.")
        return None
    if not isinstance(key.get("client_email"), str) or "@" not in key["client_email"]:
        problems.append(f"{where} has no 'client_email'; download a new JSON key for the service account.")
        return None
    return key, is_content


def _endpoint(variable: str, value: str, problems: list[str]) -> str:
    if variable == "STORAGE_EMULATOR_HOST" and "://" not in value:
        value = f"http://{value}"  # Google's libraries take host:port and assume http
    parsed = common.parse_url(variable, value, "http://127.0.0.1:4443", problems)
    if parsed is None:
        return ""
    if parsed.path in ("", "/"):
        return value.rstrip("/") + "/storage/v1/"
    return value


def parse(env: Mapping[str, str], problems: list[str]):
    from rclone_jupyter.config.remotes import Remote

    before = len(problems)
    common.check_single_line(env, ("GOOGLE_BUCKET_FOLDER", "GOOGLE_PROJECT_ID", "GOOGLE_STORAGE_ENDPOINT",
                                   "STORAGE_EMULATOR_HOST"), problems)
    folder_value = common.get(env, "GOOGLE_BUCKET_FOLDER")
    credentials = common.get(env, CREDENTIALS)
    project = common.get(env, "GOOGLE_PROJECT_ID")
    endpoint_variable = "GOOGLE_STORAGE_ENDPOINT" if common.get(env, "GOOGLE_STORAGE_ENDPOINT") else \
        "STORAGE_EMULATOR_HOST"
    endpoint_value = common.get(env, endpoint_variable)
    emulator = endpoint_variable == "STORAGE_EMULATOR_HOST" and bool(endpoint_value)

    root = None
    if folder_value:
        root = common.parse_bucket_folder("GOOGLE_BUCKET_FOLDER", folder_value, "gs://", problems)
    else:
        problems.append(f"GOOGLE_BUCKET_FOLDER is not set, but {CREDENTIALS} is: set it to 'bucket' or "
                        "'bucket/folder' (or unset the GOOGLE_* variables to run without Google Cloud Storage).")
    found = None
    if credentials:
        found = read_key(credentials, problems)
    elif not emulator:  # an emulator, as for Google's libraries, needs no credentials
        problems.append(f"{CREDENTIALS} is not set: Google Cloud Storage needs a service-account key; {_HOW}.")
    if project and (any(c.isspace() for c in project) or len(project) > 64):
        problems.append(f"GOOGLE_PROJECT_ID: {project!r} is not a project id (e.g. 'my-project-123').")
    endpoint = _endpoint(endpoint_variable, endpoint_value, problems) if endpoint_value else ""
    if len(problems) > before or (found is None and not emulator):
        return None

    where = f" at {endpoint}" if endpoint else ""
    if found is None:
        return Remote(name=NAME, provider=NAME, root=root, display=f"gs://{root}{where}",
                      options={"service_account_credentials": "", "project_number": project, "endpoint": endpoint,
                               "anonymous": "true"})
    key, is_content = found
    one_line = json.dumps(key, separators=(",", ":"))
    private_key = key["private_key"]
    return Remote(
        name=NAME,
        provider=NAME,
        root=root,
        options={
            "service_account_credentials": one_line,
            "project_number": project or str(key.get("project_id", "")),
            "endpoint": endpoint,
            "anonymous": "",
        },
        secret_keys=frozenset({"service_account_credentials"}),
        # The private key as it is, and as JSON escapes it, may show up without the rest of the key.
        extra_secrets=(private_key, json.dumps(private_key)[1:-1]),
        display=f"gs://{root}{where}",
        # Google's libraries read GOOGLE_APPLICATION_CREDENTIALS as a path: kernels get a private copy.
        kernel_files={CREDENTIALS: (KERNEL_KEY_FILE, json.dumps(key, indent=2) + "\n")} if is_content else {},
    )
