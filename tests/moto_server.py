"""moto's S3 server as `moto_server` runs it, minus a cost of moto's own that the suite pays per request.

moto 5.2 finds the backend of each request by listing its package folder (an `os.listdir` and ~200 `isdir`
calls, `moto.backends.list_of_moto_modules`) under a lock that serialises every request: a third of the
server's CPU per request here. The folder does not change while the server runs, so it is listed once.

It also fixes a race of moto's that made a test fail now and then: a key's ETag (the MD5 of its content,
computed on first use and kept) is read from the key's buffer without the lock its content is read under. A
GET of the key while its PUT computes the ETag moves the buffer's position under it: the ETag kept is the MD5
of part of the content, and every later download of that object fails its MD5 check (rclone: "corrupted on
transfer: md5 hashes differ"). The ETag is computed under that lock here.

Everything else (werkzeug, the request log tests/moto_log.py reads, S3's behaviour) is moto's own.

    python tests/moto_server.py -H 127.0.0.1 -p PORT    # the arguments of moto_server
"""

import sys

from moto import backends
from moto.s3.models import FakeKey

_MODULES = frozenset(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

_etag = FakeKey.etag.fget


def _locked_etag(key: FakeKey) -> str:
    with key.lock:  # the lock FakeKey.value reads the buffer under (not reentrant: etag never takes it itself)
        return _etag(key)


FakeKey.etag = property(_locked_etag)

from moto.server import main  # noqa: E402  (after the patch, which main's dispatcher reads per request)

if __name__ == "__main__":
    sys.exit(main())
