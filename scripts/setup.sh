#!/usr/bin/env bash
# Create .venv and install rclone-jupyter into it (editable). With "test": the test dependencies too.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
extras=""
if [ "${1:-}" = "test" ]; then
    extras="[test]"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
if [ "${1:-}" = "test" ] && [ -f tests/azurite/package.json ] && [ ! -x tests/azurite/node_modules/.bin/azurite-blob ]; then
    npm install --prefix tests/azurite --no-audit --no-fund --silent
fi
