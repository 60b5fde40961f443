"""moto's S3 server as `moto_server` runs it, minus a cost of moto's own that the suite pays per request.

moto 5.2 finds the backend of each request by listing its package folder (an `os.listdir` and ~200 `isdir`
calls, `moto.backends.list_of_moto_modules`) under a lock that serialises every request: a third of the
server's CPU per request here. The folder does not change while the server runs, so it is listed once.

It also fixes a race of moto's that made a test fail now and then: a key's ETag (the MD5 of its content,
computed on first use and kept) is read from the key's buffer without the lock its content is read under. A
GET of the key while its PUT computes the ETag moves the buffer's position under it: the ETag kept is the MD5
of part of the content, and every later download of that object fails its MD5 check (rclone: "corrupted on
transfer: md5 hashes differ"). The ETag is computed under that lock here.

With MOTO_HEAD_UNCHECKED=1 it plays an object encrypted with a KMS key the caller may not use: a HEAD answers
(the key is needed only to read the content), a GET is refused as the policy says. moto checks a HEAD as the
GetObject it is on AWS (5.2.5; 5.2.6 let every HEAD through: pinned in pyproject.toml).

Everything else (werkzeug, the request log tests/moto_log.py reads, S3's behaviour) is moto's own.

    python tests/moto_server.py -H 127.0.0.1 -p PORT    # the arguments of moto_server
"""

import os
import sys

from moto import backends
from moto.s3.models import FakeKey
from moto.s3.responses import S3Response

_MODULES = frozenset(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

_etag = FakeKey.etag.fget


def _locked_etag(key: FakeKey) -> str:
    with key.lock:  # the lock FakeKey.value reads the buffer under (not reentrant: etag never takes it itself)
        return _etag(key)


FakeKey.etag = property(_locked_etag)

if os.environ.get("MOTO_HEAD_UNCHECKED") == "1":
    _authorize = S3Response._authenticate_and_authorize_s3_action

    def _authorize_but_head(self, *args, **kwargs) -> None:
        if self.method != "HEAD":
            _authorize(self, *args, **kwargs)

    S3Response._authenticate_and_authorize_s3_action = _authorize_but_head

from moto.server import main  # noqa: E402  (after the patch, which main's dispatcher reads per request)

if __name__ == "__main__":
    sys.exit(main())
