"""The parser of moto's request log (moto_log.py), on lines moto 5.2's server wrote for rclone 1.75.2."""

from __future__ import annotations

from moto_log import count, parse, parse_line

# Verbatim from moto's log of `rclone mkdir`, `copy` (local -> bucket), `copyto` (bucket -> bucket),
# `deletefile` and `copy` (bucket -> local), ANSI colours included; plus a probe from 127.0.0.2, a multipart
# upload, a paged V2 listing, a bucket sub-resource and moto's own API.
LOG = """\
\x1b[31m\x1b[1mWARNING: This is a development server. Do not use it in a production deployment.\x1b[0m
 * Running on http://127.0.0.1:45123
127.0.0.1 - - [01/Dec/2026 10:32:53] "PUT /bucket HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "\x1b[33mHEAD /bucket/f HTTP/1.1\x1b[0m" 404 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "GET /bucket?delimiter=/&max-keys=1000&prefix=f/ HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "PUT /bucket/f/a.txt?x-id=PutObject HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "HEAD /bucket/f/a.txt HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "GET /bucket?max-keys=1000&prefix= HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "PUT /bucket/f/c.txt?x-id=CopyObject HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "\x1b[35m\x1b[1mDELETE /bucket/f/c.txt?x-id=DeleteObject HTTP/1.1\x1b[0m" 204 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "GET /bucket/f/a.txt?x-id=GetObject HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:53] "GET /bucket/f/sub%20dir/n%C3%AF.txt?x-id=GetObject HTTP/1.1" 200 -
127.0.0.2 - - [01/Dec/2026 10:32:54] "GET /bucket?delimiter=&max-keys=1000&prefix=f/ HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:55] "POST /bucket/f/big.bin?uploads=&x-id=CreateMultipartUpload HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:55] "PUT /bucket/f/big.bin?partNumber=1&uploadId=abc&x-id=UploadPart HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:55] "POST /bucket/f/big.bin?uploadId=abc&x-id=CompleteMultipartUpload HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:55] "GET /bucket?continuation-token=xyz&list-type=2&prefix=f/ HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:55] "GET /bucket?location HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:55] "POST /bucket?delete HTTP/1.1" 200 -
127.0.0.1 - - [01/Dec/2026 10:32:56] "GET /moto-api/data.json HTTP/1.1" 200 -
"""


def test_every_request_is_classified():
    kinds = [(r.client, r.kind, r.path) for r in parse(LOG)]
    assert kinds == [
        ("127.0.0.1", "PUT", "/bucket"),
        ("127.0.0.1", "HEAD", "/bucket/f"),
        ("127.0.0.1", "LIST", "/bucket"),
        ("127.0.0.1", "PUT", "/bucket/f/a.txt"),
        ("127.0.0.1", "HEAD", "/bucket/f/a.txt"),
        ("127.0.0.1", "LIST", "/bucket"),
        ("127.0.0.1", "COPY", "/bucket/f/c.txt"),
        ("127.0.0.1", "DELETE", "/bucket/f/c.txt"),
        ("127.0.0.1", "GET", "/bucket/f/a.txt"),
        ("127.0.0.1", "GET", "/bucket/f/sub dir/nï.txt"),
        ("127.0.0.2", "LIST", "/bucket"),
        ("127.0.0.1", "POST", "/bucket/f/big.bin"),
        ("127.0.0.1", "PUT", "/bucket/f/big.bin"),
        ("127.0.0.1", "POST", "/bucket/f/big.bin"),
        ("127.0.0.1", "LIST", "/bucket"),
        ("127.0.0.1", "OTHER", "/bucket"),
        ("127.0.0.1", "POST", "/bucket"),
    ]


def test_counts_by_kind_and_client():
    requests = parse(LOG)
    assert count(requests) == {"LIST": 4, "GET": 2, "HEAD": 2, "PUT": 3, "COPY": 1, "DELETE": 1, "POST": 3,
                               "OTHER": 1}
    mine = count(requests, client="127.0.0.1")
    assert mine["LIST"] == 3 and sum(mine.values()) == 16
    assert count([], client="127.0.0.1") == {k: 0 for k in ("LIST", "GET", "HEAD", "PUT", "COPY", "DELETE", "POST",
                                                             "OTHER")}


def test_status_and_query_are_kept_and_other_lines_ignored():
    head = parse_line('127.0.0.1 - - [01/Dec/2026 10:32:53] "\x1b[33mHEAD /bucket/f HTTP/1.1\x1b[0m" 404 -')
    assert head is not None and head.status == 404 and head.method == "HEAD"
    put = parse_line('127.0.0.1 - - [01/Dec/2026 10:32:55] "PUT /bucket/k?partNumber=1&uploadId=abc HTTP/1.1" 200 -')
    assert put.query == {"partNumber": ["1"], "uploadId": ["abc"]}
    for noise in (" * Running on http://127.0.0.1:45123", "Press CTRL+C to quit", "",
                  '127.0.0.1 - - [01/Dec/2026 10:32:56] "GET /moto-api/ HTTP/1.1" 200 -'):
        assert parse_line(noise) is None


def test_moto_counts_a_real_rclone_run_and_keeps_server_time(tmp_path):
    """MotoS3 end to end: mark/counts see the requests of one rclone run, by client; Last-Modified is the upload
    time while rclone's own modtime is kept in metadata (the AWS-like behaviour the moto runs are for)."""
    import json
    import time

    from conftest import PROBE_ADDRESS, Bucket, MotoS3

    moto = MotoS3(tmp_path / "moto").start()
    try:
        bucket = Bucket(tmp_path, moto.env())
        moto.mark()
        an_hour_ago = time.time() - 3600
        bucket.put("a.txt", b"a", mtime=an_hour_ago)
        assert moto.counts()["PUT"] == 0  # the probe connects from PROBE_ADDRESS...
        assert moto.counts(client=PROBE_ADDRESS)["PUT"] == 1  # ...and is counted there

        bucket.bind = None  # now as the daemon would: from 127.0.0.1
        moto.mark()
        listing = {use: json.loads(bucket._run("lsjson", bucket.remote.path(), *use).stdout)[0]["ModTime"]
                   for use in ((), ("--use-server-modtime",))}
        counts = moto.counts()
        assert counts["LIST"] >= 1 and counts["HEAD"] >= 1 and counts["PUT"] == 0, counts
        own, server = (time.mktime(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) for t in listing.values())
        assert abs(own - server) > 3000, listing  # rclone's mtime (metadata) vs the upload time (Last-Modified)
    finally:
        moto.stop()
