"""Requests counted from moto's server log: one pure parser, no server needed (unit-tested in test_moto_log.py).

moto's server (werkzeug) writes one line per request, sometimes wrapped in ANSI colours:

    127.0.0.1 - - [01/Dec/2026 10:32:53] "PUT /bucket/f/a.txt?x-id=PutObject HTTP/1.1" 200 -

The log shows neither headers nor bodies, so each request is classified by method, path and query string:

- LIST   GET on the bucket itself (`/bucket?prefix=...`, `?list-type=2`, no query at all)
- GET    GET of an object (`/bucket/key`)
- HEAD   HEAD of an object or of the bucket
- PUT    PUT of an object, a multipart part or a bucket
- COPY   server-side copy: rclone puts `x-id=CopyObject` in the query (the `x-amz-copy-source` header itself
         is not in the log). A copy by another client without that query would be counted as PUT.
- DELETE DELETE of an object (or a bucket, or an aborted multipart upload)
- POST   multipart create/complete, DeleteObjects (`?delete`)
- OTHER  GET of a bucket sub-resource (`?location`, `?versioning`, `?acl`, ...)

moto's own API (`/moto-api/...`) is not counted. The client address (the line's first field) is kept so a test
can leave out its own probes: they connect from another loopback address (127.0.0.2).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

KINDS = ("LIST", "GET", "HEAD", "PUT", "COPY", "DELETE", "POST", "OTHER")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINE = re.compile(r'^(?P<client>\S+) - - \[[^\]]*\] "(?P<method>[A-Z]+) (?P<target>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')
_LIST_PARAMS = {"list-type", "prefix", "delimiter", "max-keys", "continuation-token", "marker", "start-after",
                "encoding-type", "fetch-owner"}


@dataclass(frozen=True)
class Request:
    client: str
    method: str
    path: str  # unquoted, without the query
    query: dict[str, list[str]]
    status: int
    kind: str


def classify(method: str, target: str) -> str | None:
    """Given a request line's method and target, return its kind (one of KINDS), or None for moto's own API."""
    parts = urlsplit(target)
    path = unquote(parts.path)
    if path.startswith("/moto-api"):
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    on_bucket = "/" not in path.strip("/")
    if method == "GET":
        if not on_bucket:
            return "GET"
        return "LIST" if not query or _LIST_PARAMS & set(query) else "OTHER"
    if method == "PUT":
        return "COPY" if query.get("x-id") == ["CopyObject"] else "PUT"
    if method in ("HEAD", "DELETE", "POST"):
        return method
    return "OTHER"


def parse_line(line: str) -> Request | None:
    """Given one line of moto's log, return the request it records, or None for any other line."""
    match = _LINE.match(_ANSI.sub("", line).strip())
    if not match:
        return None
    kind = classify(match["method"], match["target"])
    if kind is None:
        return None
    parts = urlsplit(match["target"])
    return Request(match["client"], match["method"], unquote(parts.path),
                   parse_qs(parts.query, keep_blank_values=True), int(match["status"]), kind)


def parse(text: str) -> list[Request]:
    """Every request recorded in `text` (a piece of moto's log), in order."""
    return [r for r in map(parse_line, text.splitlines()) if r is not None]


def count(requests: list[Request], client: str | None = None) -> Counter:
    """{kind: number} of `requests` (only those from `client` if given); every kind of KINDS is present."""
    counts = Counter({kind: 0 for kind in KINDS})
    counts.update(r.kind for r in requests if client is None or r.client == client)
    return counts
