"""Azure Blob Storage through a container SAS: the container URL (with an optional folder) and its token.

`AZURE_CONTAINER_URL` is `https://ACCOUNT.blob.core.windows.net/CONTAINER[/folder/...]`; an emulator such as
Azurite is addressed by IP with the account in the path: `http://127.0.0.1:10000/devstoreaccount1/CONTAINER`.
`AZURE_BLOB_SAS_TOKEN` is the container SAS, with or without its leading '?'.

rclone gets one `sas_url` (container URL + token). With a SAS URL rclone's paths start with the container
name, so the remote's root is `CONTAINER/folder`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, quote, unquote

from rclone_jupyter.config.remotes import common

NAME = "azure"
VARIABLES = ("AZURE_CONTAINER_URL", "AZURE_BLOB_SAS_TOKEN")

# Azure's container names: 3-63 lower-case letters, digits and single hyphens, starting with a letter or digit.
_CONTAINER = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
# What syncing needs: read, write (create and overwrite), delete, list.
_NEEDED = {"r": "read", "w": "write", "d": "delete", "l": "list"}
_EXAMPLE_URL = "https://ACCOUNT.blob.core.windows.net/CONTAINER/folder"


def detect(env: Mapping[str, str]) -> bool:
    return any(common.get(env, v) for v in VARIABLES)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_container_url(value: str, problems: list[str]) -> tuple[str, str, str] | None:
    """Given AZURE_CONTAINER_URL, return (service URL up to the container, container, folder) or None.

    The service URL is what the SAS is appended to after the container, e.g.
    ('https://acct.blob.core.windows.net', 'data', 'team/alice').
    """
    var = "AZURE_CONTAINER_URL"
    parsed = common.parse_url(var, value, _EXAMPLE_URL, problems)
    if parsed is None:
        return None
    host = parsed.hostname
    if host == "localhost":
        problems.append(f"{var}: use 127.0.0.1 instead of 'localhost' for an emulator (rclone would read the "
                        "account name from the host name).")
        return None
    parts = [unquote(p) for p in parsed.path.split("/") if p]
    account_in_path = _is_ip(host)  # an emulator: http://127.0.0.1:10000/ACCOUNT/CONTAINER
    if account_in_path:
        if len(parts) < 2:
            problems.append(f"{var}: {value!r} has no container; an emulator URL looks like "
                            "'http://127.0.0.1:10000/devstoreaccount1/CONTAINER'.")
            return None
        prefix = f"/{quote(parts[0])}"
        parts = parts[1:]
    else:
        if ".blob." not in host:
            problems.append(f"{var}: {host!r} is not a Blob Storage host (ACCOUNT.blob.core.windows.net); "
                            f"set it to '{_EXAMPLE_URL}'.")
            return None
        if not parts:
            problems.append(f"{var}: {value!r} names the storage account but no container; "
                            f"set it to '{_EXAMPLE_URL}'.")
            return None
        prefix = ""
    container, folder = parts[0], parts[1:]
    if not _CONTAINER.match(container):
        problems.append(f"{var}: {container!r} is not a valid container name (3-63 lower-case letters, digits "
                        f"and single hyphens); set it to '{_EXAMPLE_URL}'.")
        return None
    if any(p in (".", "..") for p in folder) or "\\" in parsed.path:
        problems.append(f"{var}: the folder part may not contain '.', '..' or backslashes.")
        return None
    return f"{parsed.scheme}://{parsed.netloc}{prefix}", container, "/".join(folder)


def _parse_time(value: str) -> dt.datetime | None:
    """Given a SAS time (`2030-01-01`, `2030-01-01T00:00:00Z`, with optional fraction), return it in UTC."""
    text = value.strip().replace("Z", "+00:00")
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)


def check_sas_token(token: str, problems: list[str], *, now: dt.datetime | None = None) -> str | None:
    """Given a SAS token (leading '?' allowed), return it without the '?', or None after adding a problem.

    The token is a secret: no message quotes it.
    """
    var = "AZURE_BLOB_SAS_TOKEN"
    token = token.lstrip("?").strip()
    if not token:
        problems.append(f"{var} is empty; paste the container's SAS token (it starts with 'sv=' or 'sp=').")
        return None
    if any(c.isspace() for c in token):
        problems.append(f"{var} contains blanks; paste the SAS token on one line, exactly as Azure shows it.")
        return None
    fields = parse_qs(token, keep_blank_values=True)
    if not fields.get("sig", [""])[0]:
        problems.append(f"{var} does not look like a SAS token (it has no 'sig=' signature); generate a "
                        "container SAS in the Azure portal (Shared access tokens) and paste the token.")
        return None
    expiry = fields.get("se", [""])[0]
    if expiry:
        when = _parse_time(expiry)
        if when is None:
            problems.append(f"{var}: its expiry 'se={expiry}' is not a date; paste the token exactly as Azure "
                            "shows it.")
            return None
        if when <= (now or dt.datetime.now(dt.timezone.utc)):
            problems.append(f"{var} expired on {when.isoformat()}; generate a new SAS token with a later expiry.")
            return None
    permissions = fields.get("sp", [None])[0]
    if permissions is not None:
        missing = [word for letter, word in _NEEDED.items() if letter not in permissions]
        if missing:
            problems.append(f"{var} does not allow {', '.join(missing)} (its permissions are 'sp={permissions}'); "
                            "syncing needs read, write, delete and list: generate a SAS with at least 'rwdl'.")
            return None
    services = fields.get("ss", [None])[0]
    if services is not None and "b" not in services:
        problems.append(f"{var} is an account SAS without the Blob service (ss={services}); include Blob.")
        return None
    return token


def parse(env: Mapping[str, str], problems: list[str]):
    from rclone_jupyter.config.remotes import Remote

    before = len(problems)
    common.check_single_line(env, VARIABLES, problems)
    url_value = common.get(env, "AZURE_CONTAINER_URL")
    token_value = common.get(env, "AZURE_BLOB_SAS_TOKEN")

    located = None
    if not url_value:
        problems.append(f"AZURE_CONTAINER_URL is not set, but AZURE_BLOB_SAS_TOKEN is: set it to '{_EXAMPLE_URL}' "
                        "(or unset the AZURE_* variables to run without Azure).")
    else:
        query = url_value.partition("?")[2]
        if query and "sig=" in query:
            # A whole SAS URL pasted into the URL variable: accept it when the token variable is empty.
            if not token_value:
                token_value = query
            elif token_value.lstrip("?") != query:
                problems.append("AZURE_CONTAINER_URL contains a SAS token that differs from AZURE_BLOB_SAS_TOKEN; "
                                "keep the token in AZURE_BLOB_SAS_TOKEN only.")
        located = parse_container_url(url_value.split("?", 1)[0], problems)
    token = None
    if not token_value:
        problems.append("AZURE_BLOB_SAS_TOKEN is not set: rclone-jupyter needs a SAS token for the container "
                        "(permissions read, write, delete, list).")
    else:
        token = check_sas_token(token_value, problems)
    if len(problems) > before or located is None or token is None:
        return None

    service, container, folder = located
    root = f"{container}/{folder}" if folder else container
    sas_url = f"{service}/{container}?{token}"
    fields = parse_qs(token)
    signature = fields["sig"][0]
    return Remote(
        name=NAME,
        provider=NAME,
        root=root,
        options={"sas_url": sas_url},
        secret_keys=frozenset({"sas_url"}),
        # The token and its signature may also show up on their own (or URL-encoded) in rclone's messages.
        extra_secrets=(token, signature, quote(signature, safe="")),
        display=f"{service}/{root}",
        expires=_parse_time(fields["se"][0]) if fields.get("se") else None,
        expiry_source="AZURE_BLOB_SAS_TOKEN (se=)",
    )
