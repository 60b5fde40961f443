"""The frontend's pure parts (labextension/src/summary.ts), unit-tested with node's own test runner.

The tests are labextension/test/*.test.mjs, run on the compiled labextension/lib/ that scripts/setup.sh builds
(labextension/build.sh), with the Node the build used.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from conftest import ROOT

LABEXTENSION = ROOT / "labextension"


def node() -> str:
    """The Node labextension/build.sh used: its pinned one from PyPI if it needed one, else the machine's."""
    pinned = LABEXTENSION / ".node/bin/node"
    found = str(pinned) if pinned.exists() else shutil.which("node")
    assert found, "no node: run `bash scripts/setup.sh test` (it builds the extension, and gets Node if needed)"
    return found


def test_the_status_words_of_the_frontend():
    compiled = LABEXTENSION / "lib/summary.js"
    assert compiled.exists(), f"{compiled} is missing: run `bash scripts/setup.sh test` to build the extension"
    tests = sorted(str(p) for p in (LABEXTENSION / "test").glob("*.test.mjs"))
    assert tests
    run = subprocess.run([node(), "--test", *tests], cwd=LABEXTENSION, capture_output=True, text=True, timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    passed = re.search(r"^# pass (\d+)$", output, re.M)
    assert passed and int(passed.group(1)) >= 6 and re.search(r"^# fail 0$", output, re.M), output
