#!/usr/bin/env bash
# Run the whole test suite. Sets up everything it needs first (idempotent): a virtualenv in .venv with
# this package and its test dependencies (pip), Azurite for the Azure tests (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
set +e
# pytest-xdist: two workers per core, each with its own servers, ports and temporary folders (tests/conftest.py).
# At one per core the cores were idle 38% of the time (vmstat over a whole run: the tests wait on throttled
# links, retries and servers); at two per core they are busy and the run took 7:40 instead of 11:24 on 2 cores.
# worksteal evens out the long tests. Arguments after ours win (`scripts/test.sh -n 0` runs in one process).
workers=$(( 2 * $(nproc) ))
.venv/bin/python -m pytest -n "$workers" --dist worksteal "$@"
code=$?
set -e
# pytest exits 5 when it collected no tests: that is not a pass.
if [ "$code" -eq 5 ]; then
    echo "ERROR: pytest collected no tests" >&2
    exit 1
fi
exit "$code"
