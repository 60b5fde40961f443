"""moto's S3 server as `moto_server` runs it, minus a cost of moto's own that the suite pays per request.

moto 5.2 finds the backend of each request by listing its package folder (an `os.listdir` and ~200 `isdir`
calls, `moto.backends.list_of_moto_modules`) under a lock that serialises every request: a third of the
server's CPU per request here. The folder does not change while the server runs, so it is listed once.
Everything else (werkzeug, the request log tests/moto_log.py reads, S3's behaviour) is moto's own.

    python tests/moto_server.py -H 127.0.0.1 -p PORT    # the arguments of moto_server
"""

import sys

from moto import backends

_MODULES = frozenset(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: _MODULES

from moto.server import main  # noqa: E402  (after the patch, which main's dispatcher reads per request)

if __name__ == "__main__":
    sys.exit(main())
