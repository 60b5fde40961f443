#!/usr/bin/env bash
# Run the whole test suite. Sets up everything it needs first (idempotent): a virtualenv in .venv with
# this package and its test dependencies (pip), Azurite for the Azure tests (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
set +e
# pytest-xdist: three workers per core, each with its own servers, ports and temporary folders (tests/conftest.py).
# Most of a test's time is waiting (throttled links, retries, debounce windows): the tests' wall times add up
# to about 3.3 times their CPU. On 2 cores, one worker per core took 11:24, two 7:40 then 6:12 (as the tests'
# CPU came down), three 4:19; at 2050bab (791 tests) five workers 6:13, six 4:38-5:17, eight 5:32 (every worker
# starts its own servers: eight cost 100 s more CPU than six). worksteal evens out the long tests. Arguments after ours win
# (`scripts/test.sh -n 0` runs in one process).
workers=$(( 3 * $(nproc) ))
.venv/bin/python -m pytest -n "$workers" --dist worksteal "$@"
code=$?
set -e
# pytest exits 5 when it collected no tests: that is not a pass.
if [ "$code" -eq 5 ]; then
    echo "ERROR: pytest collected no tests" >&2
    exit 1
fi
exit "$code"
